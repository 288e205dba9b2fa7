package reach

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ipStats are a namespace's IPv4 MIB counters (/proc/net/snmp and
// /proc/net/netstat): they show a packet that entered a router and why
// routing discarded it, which moves no iptables counter. In a lab only
// probes move them (IPv6 is off, nothing else sends).
type ipStats struct {
	InReceives, InHdrErrors, InAddrErrors, ForwDatagrams, InDiscards, InDelivers, OutRequests uint64
	// InNoRoutes (IpExt): no route for a received packet (unreachable
	// route or no matching route).
	InNoRoutes uint64
	// InBcastPkts (IpExt): received by a broadcast route of the local
	// table (a subnet broadcast address): delivered locally, never
	// forwarded.
	InBcastPkts uint64
	// OutDestUnreachs, OutTimeExcds (Icmp): ICMP errors this namespace
	// sent (unreachable/prohibit routes, forwarding disabled, TTL expired).
	OutDestUnreachs, OutTimeExcds uint64
	// InEchos (Icmp): echo requests received (an ICMP probe delivered).
	InEchos uint64
	// RPFilter (TcpExt IPReversePathFilter): dropped by rp_filter.
	RPFilter uint64
	// OutTransmits (Linux 6.3+): packets handed to a device, forwarded
	// and own. ForwDatagrams counts a packet when forwarding starts,
	// before the FORWARD hook (on these kernels), so it also counts one
	// the filter then drops; OutTransmits - OutRequests is what really
	// left. HasOutTransmits: the kernel reports it.
	OutTransmits    uint64
	HasOutTransmits bool
	// RawInReceives is InReceives before the frames flooded to this
	// router by a bridge are taken out: it moves for every IPv4 packet
	// the router's IP layer saw.
	RawInReceives uint64
}

// forwarded is how many packets the router passed on to a device
// (forwarded ones, not its own).
func (st ipStats) forwarded() uint64 {
	if !st.HasOutTransmits {
		return st.ForwDatagrams
	}
	if st.OutTransmits < st.OutRequests {
		return 0
	}
	return st.OutTransmits - st.OutRequests
}

// sub returns the growth of every counter from b to a.
func (a ipStats) sub(b ipStats) ipStats {
	d := func(x, y uint64) uint64 {
		if x < y {
			return 0
		}
		return x - y
	}
	return ipStats{
		InReceives: d(a.InReceives, b.InReceives), InHdrErrors: d(a.InHdrErrors, b.InHdrErrors),
		InAddrErrors: d(a.InAddrErrors, b.InAddrErrors), ForwDatagrams: d(a.ForwDatagrams, b.ForwDatagrams),
		InDiscards: d(a.InDiscards, b.InDiscards), InDelivers: d(a.InDelivers, b.InDelivers),
		OutRequests: d(a.OutRequests, b.OutRequests), InNoRoutes: d(a.InNoRoutes, b.InNoRoutes), InBcastPkts: d(a.InBcastPkts, b.InBcastPkts),
		OutDestUnreachs: d(a.OutDestUnreachs, b.OutDestUnreachs), OutTimeExcds: d(a.OutTimeExcds, b.OutTimeExcds),
		InEchos: d(a.InEchos, b.InEchos), RPFilter: d(a.RPFilter, b.RPFilter),
		OutTransmits: d(a.OutTransmits, b.OutTransmits), HasOutTransmits: a.HasOutTransmits && b.HasOutTransmits,
		RawInReceives: d(a.RawInReceives, b.RawInReceives),
	}
}

// snmpReader rereads /proc/net/snmp and /proc/net/netstat of one
// namespace; the files are opened from a thread inside it, which binds
// them to that namespace.
type snmpReader struct {
	f, ext *os.File
	buf    []byte
	oh     *otherhostReader
}

func newSnmpReader(ns nsRef) (*snmpReader, error) {
	r := &snmpReader{buf: make([]byte, 16384)}
	err := inNS(ns, func() error {
		f, err := os.Open("/proc/thread-self/net/snmp")
		if err != nil {
			return err
		}
		r.f = f
		r.ext, _ = os.Open("/proc/thread-self/net/netstat")
		return nil
	})
	if err != nil {
		return nil, err
	}
	r.oh, _ = newOtherhostReader(ns)
	return r, nil
}

func (r *snmpReader) Close() {
	if r == nil {
		return
	}
	if r.f != nil {
		r.f.Close()
	}
	if r.ext != nil {
		r.ext.Close()
	}
	r.oh.Close()
}

func (r *snmpReader) read() (ipStats, error) {
	var st ipStats
	if r == nil || r.f == nil {
		return st, nil
	}
	n, err := r.f.ReadAt(r.buf, 0)
	if n == 0 && err != nil {
		return st, err
	}
	st, err = parseSnmp(string(r.buf[:n]))
	if err != nil || r.ext == nil {
		return st, err
	}
	if n, _ := r.ext.ReadAt(r.buf, 0); n > 0 {
		parseMIB(string(r.buf[:n]), &st)
	}
	// Frames a bridge flooded to this router, counted and dropped as
	// another host's (see otherhost.go), are not packets it received.
	st.RawInReceives = st.InReceives
	if oh, err := r.oh.read(); err == nil && oh != otherhostUnavailable {
		st.InReceives -= min(oh, st.InReceives)
	}
	return st, nil
}

// parseSnmp reads the header and value lines of /proc/net/snmp (or
// netstat); it fails without "Ip:" lines.
func parseSnmp(s string) (ipStats, error) {
	var st ipStats
	if !parseMIB(s, &st) {
		return st, fmt.Errorf("no Ip: lines in /proc/net/snmp")
	}
	return st, nil
}

// parseMIB fills st from "Section: names" / "Section: values" line pairs
// and reports whether an Ip: section was seen.
func parseMIB(s string, st *ipStats) bool {
	sawIP := false
	var head []string
	prev := ""
	for _, l := range strings.Split(s, "\n") {
		sec, rest, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if sec != prev || head == nil {
			head, prev = f, sec
			continue
		}
		if sec == "Ip" {
			sawIP = true
		}
		for i, v := range f {
			if i >= len(head) {
				break
			}
			if p := st.field(sec, head[i]); p != nil {
				*p, _ = strconv.ParseUint(v, 10, 64)
			}
		}
		head, prev = nil, ""
	}
	return sawIP
}

func (st *ipStats) field(sec, name string) *uint64 {
	switch sec + "." + name {
	case "Ip.InReceives":
		return &st.InReceives
	case "Ip.InHdrErrors":
		return &st.InHdrErrors
	case "Ip.InAddrErrors":
		return &st.InAddrErrors
	case "Ip.ForwDatagrams":
		return &st.ForwDatagrams
	case "Ip.InDiscards":
		return &st.InDiscards
	case "Ip.InDelivers":
		return &st.InDelivers
	case "Ip.OutRequests":
		return &st.OutRequests
	case "Ip.OutTransmits":
		st.HasOutTransmits = true
		return &st.OutTransmits
	case "IpExt.InNoRoutes":
		return &st.InNoRoutes
	case "IpExt.InBcastPkts":
		return &st.InBcastPkts
	case "Icmp.OutDestUnreachs":
		return &st.OutDestUnreachs
	case "Icmp.OutTimeExcds":
		return &st.OutTimeExcds
	case "Icmp.InEchos":
		return &st.InEchos
	case "TcpExt.IPReversePathFilter":
		return &st.RPFilter
	}
	return nil
}
