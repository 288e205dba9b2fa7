// Command gen-network writes a realistic generated network for scale tests:
// raw facts of N routers in the format `tsim facts script` writes, and a
// flows file of M flows whose expectations come from tsim's own simulation
// of those facts.
//
//	go run ./scripts/gen-network --routers 200 --flows 1000 --seed 1 -o /tmp/net200
//
// writes /tmp/net200/facts/<router>_facts.txt and /tmp/net200/flows.csv
// (src,dst,spec,expect). The same arguments always give the same bytes.
// The network's shape is described in network.go; docs/scale.md uses it for
// the cost curves.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "gen-network:", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

func run(ctx context.Context, args []string, log io.Writer) error {
	fs := flag.NewFlagSet("gen-network", flag.ContinueOnError)
	fs.SetOutput(log)
	routers := fs.Int("routers", 10, "number of routers (4-963)")
	flows := fs.Int("flows", 100, "number of flows in flows.csv")
	seed := fs.Uint64("seed", 1, "random seed (same seed, same bytes)")
	out := fs.String("o", "", "output directory (created; facts/ and flows.csv inside it are replaced)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if *out == "" || fs.NArg() > 0 {
		return fmt.Errorf("%w: gen-network --routers N --flows M --seed S -o DIR", errUsage)
	}
	if *flows < 0 {
		return fmt.Errorf("%w: --flows %d: not negative", errUsage, *flows)
	}
	n, err := newNetwork(*routers, *seed)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	return n.write(ctx, *out, *flows, log)
}

// write writes DIR/facts and DIR/flows.csv.
func (n *network) write(ctx context.Context, dir string, nflows int, log io.Writer) error {
	fdir := filepath.Join(dir, "facts")
	if err := os.RemoveAll(fdir); err != nil {
		return err
	}
	if err := os.MkdirAll(fdir, 0o755); err != nil {
		return err
	}
	for _, r := range n.routers {
		if err := os.WriteFile(filepath.Join(fdir, r.name+"_facts.txt"), []byte(r.factsText()), 0o644); err != nil {
			return err
		}
	}
	lines, stats, err := n.flows(ctx, fdir, nflows)
	if err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString("src,dst,spec,expect\n")
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
	if err := os.WriteFile(filepath.Join(dir, "flows.csv"), []byte(b.String()), 0o644); err != nil {
		return err
	}
	rules, members := 0, 0
	for _, r := range n.routers {
		for _, c := range r.filter {
			rules += len(c.rules)
		}
		for _, s := range r.ipsets {
			members += len(s.members)
		}
	}
	fmt.Fprintf(log, "gen-network: %d routers (%d sites), %d filter rules, %d ipset members; %d flows: %s\n",
		len(n.routers), len(n.sites), rules, members, len(lines), stats)
	return nil
}
