package reach

import (
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
}

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
	if err := r.dump(nftMsgGetRule, func(attrs []byte) error { c.addRuleMsg(attrs); return nil }); err != nil {
		return nil, err
	}
	return c, nil
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
	if hooked && cnt != nil {
		cc.Policy = *cnt
	}
}

// addRuleMsg reads one NFT_MSG_NEWRULE answer (rules come in chain
// order): its counter expression.
func (c Counters) addRuleMsg(attrs []byte) {
	var table, chain, target string
	var cnt Count
	for t, v := range nlAttrs(attrs) {
		switch t {
		case nftaRuleTable:
			table = cstr(v)
		case nftaRuleChain:
			chain = cstr(v)
		case nftaRuleExpressions:
			for _, elem := range nlAttrs(v) {
				var name string
				var data []byte
				for et, ev := range nlAttrs(elem) {
					switch et {
					case nftaExprName:
						name = cstr(ev)
					case nftaExprData:
						data = ev
					}
				}
				if name == "counter" {
					cnt = counterAttrs(data)
				} else if x := exprTarget(name, data); x != "" {
					target = x
				}
			}
		}
	}
	cc := c.chain(table, chain)
	cc.Rules = append(cc.Rules, cnt)
	cc.Targets = append(cc.Targets, target)
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

// dump sends one NLM_F_DUMP request for the IPv4 family and calls f with
// the attributes of each answer message.
func (r *nftReader) dump(msg uint16, f func(attrs []byte) error) error {
	seq := r.seq.Add(1)
	req := make([]byte, unix.SizeofNlMsghdr+4)
	binary.NativeEndian.PutUint32(req[0:], uint32(len(req)))
	binary.NativeEndian.PutUint16(req[4:], nfnlSubsysNftables<<8|msg)
	binary.NativeEndian.PutUint16(req[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	binary.NativeEndian.PutUint32(req[8:], seq)
	req[16] = unix.NFPROTO_IPV4 // nfgenmsg: family, version 0, res_id 0
	if err := unix.Sendto(r.fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("nftables dump request: %w", err)
	}
	for {
		n, _, err := unix.Recvfrom(r.fd, r.buf, 0)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return fmt.Errorf("nftables dump: %w", err)
		}
		b := r.buf[:n]
		for len(b) >= unix.SizeofNlMsghdr {
			l := int(binary.NativeEndian.Uint32(b[0:]))
			typ := binary.NativeEndian.Uint16(b[4:])
			flags := binary.NativeEndian.Uint16(b[6:])
			mseq := binary.NativeEndian.Uint32(b[8:])
			if l < unix.SizeofNlMsghdr || l > len(b) {
				return errors.New("nftables dump: truncated netlink message")
			}
			body := b[unix.SizeofNlMsghdr:l]
			b = b[nlAlign(l):]
			if mseq != seq {
				continue
			}
			switch typ {
			case unix.NLMSG_DONE:
				return nil
			case unix.NLMSG_ERROR:
				if len(body) >= 4 {
					if e := int32(binary.NativeEndian.Uint32(body)); e != 0 {
						return fmt.Errorf("nftables dump: %w", unix.Errno(-e))
					}
				}
				return nil
			}
			if flags&unix.NLM_F_DUMP_INTR != 0 {
				return errors.New("nftables dump interrupted: the ruleset changed while reading it")
			}
			if len(body) < 4 {
				continue
			}
			if err := f(body[4:]); err != nil {
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
