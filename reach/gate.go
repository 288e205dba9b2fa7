package reach

import (
	"encoding/binary"

	"golang.org/x/sys/unix"
)

// An end-to-end probe watches every router of the lab, but only the few on
// its way see a packet. Dumping the ruleset of each of them before and after
// every probe (tens of ms for a router of thousands of rules) was most of
// reach's time on large labs. Every router interface of a lab is a veth whose
// other end is a bridge port in the fabric namespace, so one statistics dump
// there tells which routers a probe touched: a router none of whose fabric
// ends moved a packet received nothing and sent nothing, and neither its
// netfilter counters nor its IP statistics moved (they only move for packets
// it receives or sends; the lab sends nothing else). Its "after" is its
// "before", read for nothing. A router that originates the probe may use
// only its loopback: it is always read.

// gateSnap is one dump of the fabric's link statistics: packets in either
// direction (and drops), per fabric ifindex.
type gateSnap map[int32]uint64

// fabricGate reads the fabric's link statistics and knows which fabric
// ends belong to which router.
type fabricGate struct {
	rd *otherhostReader
	// ends lists the fabric ifindexes of a router's veths; a router
	// missing here (a veth whose peer is not in the fabric) is always
	// read.
	ends map[string][]int32
}

// ifla stats constants (linux/if_link.h): RTM_GETSTATS with
// IFLA_STATS_LINK_64 answers with a struct rtnl_link_stats64 per link,
// a fraction of what an RTM_GETLINK dump carries.
const (
	iflaStatsLink64  = 1
	sizeofIfStatsMsg = 12
)

// read dumps the fabric's link counters.
func (g *fabricGate) read() (gateSnap, error) {
	if g == nil {
		return nil, nil
	}
	snap := gateSnap{}
	msg := make([]byte, sizeofIfStatsMsg)
	msg[0] = unix.AF_UNSPEC
	binary.NativeEndian.PutUint32(msg[8:], 1<<(iflaStatsLink64-1))
	err := g.rd.dump(unix.RTM_GETSTATS, msg, func(body []byte) {
		if len(body) < sizeofIfStatsMsg {
			return
		}
		idx := int32(binary.NativeEndian.Uint32(body[4:]))
		for t, v := range nlAttrs(body[sizeofIfStatsMsg:]) {
			// rx_packets, tx_packets, rx_bytes, tx_bytes, rx_errors,
			// tx_errors, rx_dropped, tx_dropped.
			if t == iflaStatsLink64 && len(v) >= 8*8 {
				u := func(i int) uint64 { return binary.NativeEndian.Uint64(v[8*i:]) }
				snap[idx] = u(0) + u(1) + u(6) + u(7)
			}
		}
	})
	if err != nil {
		return nil, err
	}
	return snap, nil
}

// moved reports whether router's fabric ends moved a packet between a and
// b (true when the gate cannot tell).
func (g *fabricGate) moved(router string, a, b gateSnap) bool {
	if g == nil || a == nil || b == nil {
		return true
	}
	ends, ok := g.ends[router]
	if !ok {
		return true
	}
	for _, i := range ends {
		x, okA := a[i]
		y, okB := b[i]
		if !okA || !okB || x != y {
			return true
		}
	}
	return false
}

// total is the sum of every fabric link's counters (for settle).
func (s gateSnap) total() (n uint64) {
	for _, v := range s {
		n += v
	}
	return n
}

// openGate maps each lab router's veths to their fabric ends. It returns
// nil (no gate: every router is read) when the lab has no fabric or the
// mapping cannot be made.
func (r *runner) openGate() *fabricGate {
	if !r.fabric.h.IsOpen() {
		return nil
	}
	rd, err := newOtherhostReader(r.fabric)
	if err != nil {
		return nil
	}
	g := &fabricGate{rd: rd, ends: map[string][]int32{}}
	snap, err := g.read()
	if err != nil || len(snap) == 0 {
		rd.Close()
		return nil
	}
	for _, x := range r.order {
		links, err := x.nl.LinkList()
		if err != nil {
			continue
		}
		var ends []int32
		ok := true
		for _, l := range links {
			switch l.Type() {
			case "veth":
				peer := int32(l.Attrs().ParentIndex)
				if _, there := snap[peer]; !there || peer == 0 {
					ok = false
				}
				ends = append(ends, peer)
			case "device":
				if l.Attrs().Name != "lo" {
					ok = false
				}
			default:
				ok = false // a bridge, a tunnel …: not a fabric port
			}
		}
		if ok {
			g.ends[x.name] = ends
		}
	}
	return g
}

func (g *fabricGate) Close() {
	if g != nil {
		g.rd.Close()
	}
}

// dump sends one NLM_F_DUMP request of type typ with payload and calls f
// with each answer's body.
func (r *otherhostReader) dump(typ uint16, payload []byte, f func(body []byte)) error {
	r.seq++
	return nlExchange(r.fd, r.buf, typ, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, r.seq, append(make([]byte, unix.SizeofNlMsghdr), payload...),
		func(_ uint16, body []byte) (bool, error) {
			f(body)
			return false, nil
		})
}
