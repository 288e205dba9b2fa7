package reach

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/tsim-dev/tsim/internal/netx"
)

// Counters is one snapshot of a router's iptables counters: per table and
// chain, the policy counter (built-in chains) and each rule's counter in
// kernel order (index i = kernel rule i+1).
type Counters map[string]map[string]*ChainCounters

// ChainCounters are the counters of one chain.
type ChainCounters struct {
	Policy Count   // built-in chains only
	Rules  []Count // kernel order
	// Targets are the kernel rules' targets in the same order, as the
	// kernel has them (ACCEPT, DROP, REJECT, a chain, DNAT …; "" for a
	// rule without one or one the reader cannot name).
	Targets []string
	// Base: a chain hooked into the kernel's path (a built-in chain).
	Base bool
}

// Count is a packet and byte counter.
type Count struct{ Packets, Bytes uint64 }

// nfnetlink / nf_tables constants (linux/netfilter/nf_tables.h); x/sys/unix
// does not carry the nf_tables ones.
const (
	nfnlSubsysNftables = 10
	nftMsgGetChain     = 4
	nftMsgGetRule      = 7

	nftaChainTable    = 1
	nftaChainName     = 3
	nftaChainHook     = 4
	nftaChainCounters = 8

	nftaRuleTable       = 1
	nftaRuleChain       = 2
	nftaRuleExpressions = 4
	nftaListElem        = 1
	nftaExprName        = 1
	nftaExprData        = 2
	nftaCounterBytes    = 1
	nftaCounterPackets  = 2

	nlaTypeMask = 0x3fff
)

// nftReader dumps the iptables-nft counters of one namespace over a
// netlink socket opened inside it once: a snapshot is two dump requests,
// no process is started (iptables-save -c costs a fork+exec per call).
type nftReader struct {
	fd  int
	seq atomic.Uint32
	buf []byte
	// targets caches each chain's rule targets from the first snapshot
	// (the lab's rules do not change while it is probed): later snapshots
	// parse only the counter expressions, a large part of a snapshot's
	// cost for rulesets of thousands of rules. A chain whose rule count
	// changed is parsed again.
	targets map[string][]string
	// big: a chain of the router holds more than bigChain rules, so
	// SnapshotSince reads chain by chain.
	big bool
}

// bigChain is the chain length from which reading only the chains a probe
// entered beats one dump of everything: a dump request per entered chain
// costs a few tens of µs, a rule's serialization about a µs.
const bigChain = 500

func newNftReader(ns netns.NsHandle) (*nftReader, error) {
	fd, err := netlinkSocket(ns, unix.NETLINK_NETFILTER, "netfilter")
	if err != nil {
		return nil, err
	}
	r := &nftReader{fd: fd, buf: make([]byte, 1<<16)}
	// Large dumps (corpus routers have hundreds of rules) need room.
	unix.SetsockoptInt(r.fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 1<<20)
	return r, nil
}

func (r *nftReader) Close() {
	if r.fd >= 0 {
		unix.Close(r.fd)
		r.fd = -1
	}
}

// Snapshot reads every table of the IPv4 family.
func (r *nftReader) Snapshot() (Counters, error) {
	c := Counters{}
	if err := r.dump(nftMsgGetChain, func(attrs []byte) error { c.addChainMsg(attrs); return nil }); err != nil {
		return nil, err
	}
	cached := r.targets != nil
	var cur *ChainCounters
	var curTable, curChain []byte
	if err := r.dump(nftMsgGetRule, func(attrs []byte) error {
		// Rules come chain after chain: the chain is looked up once.
		table, chain := ruleChain(attrs)
		if cur == nil || !bytes.Equal(table, curTable) || !bytes.Equal(chain, curChain) {
			curTable, curChain = append(curTable[:0], table...), append(curChain[:0], chain...)
			cur = c.chain(string(table), string(chain))
		}
		cur.addRule(attrs, !cached)
		return nil
	}); err != nil {
		return nil, err
	}
	if !cached {
		r.targets = map[string][]string{}
		for tn, t := range c {
			for cn, cc := range t {
				r.targets[tn+"\x00"+cn] = cc.Targets
				r.big = r.big || len(cc.Rules) > bigChain
			}
		}
		return c, nil
	}
	for tn, t := range c {
		for cn, cc := range t {
			tg, ok := r.targets[tn+"\x00"+cn]
			if !ok || len(tg) != len(cc.Rules) {
				// Changed since the first snapshot: read this chain whole.
				r.targets = nil
				return r.Snapshot()
			}
			cc.Targets = tg
		}
	}
	return c, nil
}

// SnapshotSince reads the counters, knowing those of prev: on a router
// with a big chain it reads the built-in chains, then only the chains a
// rule jumped (or went) to since prev — a chain no jump rule's counter
// moved for was not entered, and its counters are prev's. Elsewhere it
// is Snapshot.
func (r *nftReader) SnapshotSince(prev Counters) (Counters, error) {
	if !r.big || r.targets == nil || prev == nil {
		return r.Snapshot()
	}
	c := Counters{}
	if err := r.dump(nftMsgGetChain, func(attrs []byte) error { c.addChainMsg(attrs); return nil }); err != nil {
		return nil, err
	}
	type key struct{ table, chain string }
	var queue []key
	for tn, t := range c {
		for cn, cc := range t {
			if cc.Base {
				queue = append(queue, key{tn, cn})
			}
		}
	}
	read := map[key]bool{}
	for len(queue) > 0 {
		k := queue[0]
		queue = queue[1:]
		if read[k] {
			continue
		}
		read[k] = true
		cc := c.chain(k.table, k.chain)
		cc.Rules = cc.Rules[:0]
		err := r.dump(nftMsgGetRule, func(attrs []byte) error { cc.addRule(attrs, false); return nil },
			nlAttr(nftaRuleTable, append([]byte(k.table), 0)), nlAttr(nftaRuleChain, append([]byte(k.chain), 0)))
		if err != nil {
			return nil, err
		}
		tg, ok := r.targets[k.table+"\x00"+k.chain]
		if !ok || len(tg) != len(cc.Rules) {
			r.targets = nil // the ruleset changed: start again
			return r.Snapshot()
		}
		cc.Targets = tg
		var before []Count
		if p := prev[k.table][k.chain]; p != nil {
			before = p.Rules
		}
		for i, x := range cc.Rules {
			if next := tg[i]; next != "" && c[k.table][next] != nil && (i >= len(before) || x.Packets > before[i].Packets) {
				queue = append(queue, key{k.table, next})
			}
		}
	}
	for tn, t := range c {
		for cn, cc := range t {
			if read[key{tn, cn}] {
				continue
			}
			p := prev[tn][cn]
			tg := r.targets[tn+"\x00"+cn]
			if p == nil || len(p.Rules) != len(tg) {
				r.targets = nil
				return r.Snapshot()
			}
			cc.Rules, cc.Targets = p.Rules, tg
		}
	}
	return c, nil
}

// nlAttr encodes one netlink attribute.
func nlAttr(t uint16, v []byte) []byte {
	a := make([]byte, nlAlign(4+len(v)))
	binary.NativeEndian.PutUint16(a[0:], uint16(4+len(v)))
	binary.NativeEndian.PutUint16(a[2:], t)
	copy(a[4:], v)
	return a
}

// ruleChain returns the table and chain names of an NFT_MSG_NEWRULE
// answer (without their terminating NUL).
func ruleChain(attrs []byte) (table, chain []byte) {
	for t, v := range nlAttrs(attrs) {
		switch t {
		case nftaRuleTable:
			table = trimNUL(v)
		case nftaRuleChain:
			chain = trimNUL(v)
		}
	}
	return table, chain
}

func trimNUL(b []byte) []byte {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return b[:i]
	}
	return b
}

var counterName = []byte("counter")

// addRule appends one rule's counter (and, with targets, its target).
func (cc *ChainCounters) addRule(attrs []byte, targets bool) {
	var cnt Count
	target := ""
	for t, v := range nlAttrs(attrs) {
		if t != nftaRuleExpressions {
			continue
		}
		for _, elem := range nlAttrs(v) {
			var name, data []byte
			for et, ev := range nlAttrs(elem) {
				switch et {
				case nftaExprName:
					name = trimNUL(ev)
				case nftaExprData:
					data = ev
				}
			}
			if bytes.Equal(name, counterName) {
				cnt = counterAttrs(data)
			} else if targets {
				if x := exprTarget(string(name), data); x != "" {
					target = x
				}
			}
		}
	}
	cc.Rules = append(cc.Rules, cnt)
	if targets {
		cc.Targets = append(cc.Targets, target)
	}
}

// addChainMsg reads one NFT_MSG_NEWCHAIN answer: a base chain's counters
// are its policy counter.
func (c Counters) addChainMsg(attrs []byte) {
	var table, name string
	var cnt *Count
	hooked := false
	for t, v := range nlAttrs(attrs) {
		switch t {
		case nftaChainTable:
			table = cstr(v)
		case nftaChainName:
			name = cstr(v)
		case nftaChainHook:
			hooked = true
		case nftaChainCounters:
			x := counterAttrs(v)
			cnt = &x
		}
	}
	cc := c.chain(table, name)
	cc.Base = hooked
	if hooked && cnt != nil {
		cc.Policy = *cnt
	}
}

// nf_tables expression attributes that name what a rule does.
const (
	nftaImmediateData = 2
	nftaDataVerdict   = 2
	nftaVerdictCode   = 1
	nftaVerdictChain  = 2
	nftaTargetName    = 1
	nftaNatType       = 1
)

// exprTarget names the iptables target an nf_tables expression of an
// iptables-nft rule stands for ("" for a match or an unknown one).
func exprTarget(name string, data []byte) string {
	switch name {
	case "immediate":
		for t, v := range nlAttrs(data) {
			if t != nftaImmediateData {
				continue
			}
			for t, v := range nlAttrs(v) {
				if t != nftaDataVerdict {
					continue
				}
				code, chain := int32(0), ""
				for t, v := range nlAttrs(v) {
					switch t {
					case nftaVerdictCode:
						if len(v) >= 4 {
							code = int32(binary.BigEndian.Uint32(v))
						}
					case nftaVerdictChain:
						chain = cstr(v)
					}
				}
				switch code {
				case 0:
					return "DROP"
				case 1:
					return "ACCEPT"
				case -3, -4: // NFT_JUMP, NFT_GOTO
					return chain
				case -5:
					return "RETURN"
				}
			}
		}
	case "target":
		for t, v := range nlAttrs(data) {
			if t == nftaTargetName {
				return cstr(v)
			}
		}
	case "reject":
		return "REJECT"
	case "masq":
		return "MASQUERADE"
	case "redir":
		return "REDIRECT"
	case "log":
		return "LOG"
	case "nat":
		for t, v := range nlAttrs(data) {
			if t == nftaNatType && len(v) >= 4 {
				if binary.BigEndian.Uint32(v) == 1 {
					return "DNAT"
				}
				return "SNAT"
			}
		}
	}
	return ""
}

// counterAttrs reads NFTA_COUNTER_BYTES/PACKETS.
func counterAttrs(b []byte) Count {
	var c Count
	for t, v := range nlAttrs(b) {
		switch t {
		case nftaCounterBytes:
			c.Bytes = be64(v)
		case nftaCounterPackets:
			c.Packets = be64(v)
		}
	}
	return c
}

func (c Counters) chain(table, name string) *ChainCounters {
	t := c[table]
	if t == nil {
		t = map[string]*ChainCounters{}
		c[table] = t
	}
	cc := t[name]
	if cc == nil {
		cc = &ChainCounters{}
		t[name] = cc
	}
	return cc
}

// dump sends one NLM_F_DUMP request for the IPv4 family (with filter
// attributes, if any) and calls f with the attributes of each answer
// message.
func (r *nftReader) dump(msg uint16, f func(attrs []byte) error, filter ...[]byte) error {
	seq := r.seq.Add(1)
	req := make([]byte, unix.SizeofNlMsghdr+4)
	for _, a := range filter {
		req = append(req, a...)
	}
	req[unix.SizeofNlMsghdr] = unix.NFPROTO_IPV4 // nfgenmsg: family, version 0, res_id 0
	err := nlExchange(r.fd, r.buf, nfnlSubsysNftables<<8|msg, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, seq, req,
		func(flags uint16, body []byte) (bool, error) {
			if flags&unix.NLM_F_DUMP_INTR != 0 {
				return true, errors.New("the ruleset changed while reading it")
			}
			if len(body) < 4 {
				return false, nil
			}
			return false, f(body[4:])
		})
	if err != nil {
		return fmt.Errorf("nftables dump: %w", err)
	}
	return nil
}

// nlExchange sends one netlink request (req: a header's room, then the
// payload) of type typ and flags with sequence number seq on fd, and calls
// each with every answer message of that sequence until each says it is
// done, a dump ends (NLMSG_DONE) or an NLMSG_ERROR answers (an error, or
// the acknowledgement of success).
func nlExchange(fd int, buf []byte, typ, flags uint16, seq uint32, req []byte,
	each func(flags uint16, body []byte) (done bool, err error)) error {
	binary.NativeEndian.PutUint32(req[0:], uint32(len(req)))
	binary.NativeEndian.PutUint16(req[4:], typ)
	binary.NativeEndian.PutUint16(req[6:], flags)
	binary.NativeEndian.PutUint32(req[8:], seq)
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return err
	}
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return err
		}
		b := buf[:n]
		for len(b) >= unix.SizeofNlMsghdr {
			l := int(binary.NativeEndian.Uint32(b[0:]))
			t := binary.NativeEndian.Uint16(b[4:])
			fl := binary.NativeEndian.Uint16(b[6:])
			mseq := binary.NativeEndian.Uint32(b[8:])
			if l < unix.SizeofNlMsghdr || l > len(b) {
				return errors.New("truncated netlink message")
			}
			body := b[unix.SizeofNlMsghdr:l]
			b = b[nlAlign(l):]
			if mseq != seq {
				continue
			}
			switch t {
			case unix.NLMSG_DONE:
				return nil
			case unix.NLMSG_ERROR:
				if len(body) >= 4 {
					if e := int32(binary.NativeEndian.Uint32(body)); e != 0 {
						return unix.Errno(-e)
					}
				}
				return nil
			}
			if done, err := each(fl, body); done || err != nil {
				return err
			}
		}
	}
}

func nlAlign(n int) int { return (n + 3) &^ 3 }

// nlAttrs iterates over netlink attributes (type without flag bits).
func nlAttrs(b []byte) func(yield func(uint16, []byte) bool) {
	return func(yield func(uint16, []byte) bool) {
		for len(b) >= 4 {
			l := int(binary.NativeEndian.Uint16(b[0:]))
			t := binary.NativeEndian.Uint16(b[2:]) & nlaTypeMask
			if l < 4 || l > len(b) {
				return
			}
			if !yield(t, b[4:l]) {
				return
			}
			b = b[min(nlAlign(l), len(b)):]
		}
	}
}

func cstr(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

func be64(b []byte) uint64 {
	if len(b) < 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

// nftAvailable reports whether iptables is the nf_tables variant, whose
// rules this reader sees; otherwise counters come from iptables-save -c.
func nftAvailable() bool {
	p, err := os.Readlink("/usr/sbin/iptables")
	if err == nil && p == "/etc/alternatives/iptables" {
		p, err = os.Readlink(p)
	}
	if err != nil {
		return true // unknown: try nftables and verify against the facts
	}
	return p != "" && !strings.Contains(p, "legacy")
}

// netlinkSocket opens a netlink socket of proto inside namespace ns (a
// socket keeps the namespace it was created in) and binds it.
func netlinkSocket(ns netns.NsHandle, proto int, what string) (int, error) {
	fd := -1
	err := netx.Do(ns, func() error {
		var err error
		fd, err = unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
		if err != nil {
			return fmt.Errorf("%s netlink socket: %w", what, err)
		}
		return nil
	})
	if err != nil {
		return -1, err
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("bind %s netlink socket: %w", what, err)
	}
	return fd, nil
}
