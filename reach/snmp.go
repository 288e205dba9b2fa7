package reach

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ipStats are a namespace's IPv4 MIB counters: they show a packet that
// entered a router and was discarded by routing (a blackhole route or
// policy rule), which moves no iptables counter.
type ipStats struct {
	InReceives, ForwDatagrams, InDelivers uint64
}

// snmpReader rereads /proc/net/snmp of one namespace; the file is opened
// from a thread inside it, which binds it to that namespace.
type snmpReader struct {
	f   *os.File
	buf []byte
}

func newSnmpReader(ns nsRef) (*snmpReader, error) {
	r := &snmpReader{buf: make([]byte, 8192)}
	err := inNS(ns, func() error {
		f, err := os.Open("/proc/thread-self/net/snmp")
		r.f = f
		return err
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

func (r *snmpReader) Close() {
	if r != nil && r.f != nil {
		r.f.Close()
	}
}

func (r *snmpReader) read() (ipStats, error) {
	var st ipStats
	if r == nil {
		return st, nil
	}
	n, err := r.f.ReadAt(r.buf, 0)
	if n == 0 && err != nil {
		return st, err
	}
	return parseSnmp(string(r.buf[:n]))
}

// parseSnmp reads the "Ip:" header and value lines.
func parseSnmp(s string) (ipStats, error) {
	var st ipStats
	var head []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(l, "Ip: ") {
			continue
		}
		f := strings.Fields(l)[1:]
		if head == nil {
			head = f
			continue
		}
		for i, v := range f {
			if i >= len(head) {
				break
			}
			x, _ := strconv.ParseUint(v, 10, 64)
			switch head[i] {
			case "InReceives":
				st.InReceives = x
			case "ForwDatagrams":
				st.ForwDatagrams = x
			case "InDelivers":
				st.InDelivers = x
			}
		}
		return st, nil
	}
	return st, fmt.Errorf("no Ip: lines in /proc/net/snmp")
}

// discarded reports a packet that entered and was neither forwarded nor
// delivered locally.
func discarded(before, after ipStats) bool {
	return after.InReceives > before.InReceives && after.ForwDatagrams == before.ForwDatagrams &&
		after.InDelivers == before.InDelivers
}
