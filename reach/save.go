package reach

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/vishvananda/netns"

	"github.com/tsim-dev/tsim/internal/netx"
)

// saveReader reads counters with `iptables-save -c` inside the namespace:
// exact for both iptables variants, but a process per snapshot.
type saveReader struct {
	ctx context.Context
	ns  netns.NsHandle
}

func (r *saveReader) Snapshot() (Counters, error) {
	out, _, err := netx.Exec(r.ctx, r.ns, nil, "iptables-save", "-c")
	if err != nil {
		return nil, err
	}
	return parseSave(out)
}

// SnapshotSince is Snapshot: iptables-save prints everything anyway.
func (r *saveReader) SnapshotSince(Counters) (Counters, error) { return r.Snapshot() }

func (r *saveReader) Close() {}

// parseSave reads iptables-save -c output: ":CHAIN POLICY [p:b]" lines
// and "[p:b] -A CHAIN …" lines, per "*table".
func parseSave(out []byte) (Counters, error) {
	c := Counters{}
	table := ""
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<16), 1<<22)
	n := 0
	for sc.Scan() {
		n++
		l := strings.TrimSpace(sc.Text())
		switch {
		case l == "" || l[0] == '#' || l == "COMMIT":
		case l[0] == '*':
			table = l[1:]
		case l[0] == ':':
			f := strings.Fields(l[1:])
			if len(f) < 2 {
				return nil, fmt.Errorf("iptables-save line %d: bad chain line %q", n, l)
			}
			cc := c.chain(table, f[0])
			if len(f) >= 3 {
				p, b, ok := parseCount(f[2])
				if ok && f[1] != "-" {
					cc.Policy = Count{p, b}
				}
			}
		case l[0] == '[':
			end := strings.IndexByte(l, ']')
			if end < 0 {
				return nil, fmt.Errorf("iptables-save line %d: bad counter in %q", n, l)
			}
			p, b, ok := parseCount(l[:end+1])
			if !ok {
				return nil, fmt.Errorf("iptables-save line %d: bad counter in %q", n, l)
			}
			f := strings.Fields(l[end+1:])
			if len(f) < 2 || f[0] != "-A" {
				return nil, fmt.Errorf("iptables-save line %d: expected -A CHAIN in %q", n, l)
			}
			cc := c.chain(table, f[1])
			cc.Rules = append(cc.Rules, Count{p, b})
			cc.Targets = append(cc.Targets, saveTarget(f))
		}
	}
	return c, sc.Err()
}

func parseCount(s string) (p, b uint64, ok bool) {
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	ps, bs, found := strings.Cut(s, ":")
	if !found {
		return 0, 0, false
	}
	p, err1 := strconv.ParseUint(ps, 10, 64)
	b, err2 := strconv.ParseUint(bs, 10, 64)
	return p, b, err1 == nil && err2 == nil
}

// saveTarget is the -j/-g target of an iptables-save rule's fields.
func saveTarget(f []string) string {
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "-j" || f[i] == "-g" || f[i] == "--jump" || f[i] == "--goto" {
			return f[i+1]
		}
	}
	return ""
}
