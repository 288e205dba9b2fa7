package main

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/facts"
	"github.com/tsim-dev/tsim/trace"
)

// A nightly suite is an application team's: clients in a few sites, servers
// in a few more (not every host of the estate), every combination of a
// dozen services. So a suite of any size touches a bounded part of a large
// network, which is what lets a lab build only what the flows can touch.
const (
	clientSites = 6
	serverSites = 10
)

var services = []struct{ spec, proto string }{
	{"443/tcp", "tcp"}, {"80/tcp", "tcp"}, {"22/tcp", "tcp"}, {"5432/tcp", "tcp"},
	{"3306/tcp", "tcp"}, {"8443/tcp", "tcp"}, {"53/udp", "udp"}, {"514/udp", "udp"}, {"icmp", "icmp"},
}

// endpoints returns the suite's clients and servers.
func (n *network) endpoints() (clients, servers []string) {
	var lanSites []*site
	for _, s := range n.sites {
		if s.gw && s.core1 {
			lanSites = append(lanSites, s)
		}
	}
	pick := func(max int) []*site {
		l := slices.Clone(lanSites)
		n.rng.Shuffle(len(l), func(i, j int) { l[i], l[j] = l[j], l[i] })
		l = l[:min(max, len(l))]
		slices.SortFunc(l, func(a, b *site) int { return a.k - b.k })
		return l
	}
	for _, s := range pick(clientSites) {
		for _, h := range []string{"10.10", "10.11", "10.12", "10.66", "20.30", "30.10"} {
			clients = append(clients, fmt.Sprintf("10.%d.%s", s.k, h))
		}
	}
	for _, s := range pick(serverSites) {
		for _, h := range []string{"20.10", "20.11", "20.12", "10.20", "30.20"} {
			servers = append(servers, fmt.Sprintf("10.%d.%s", s.k, h))
		}
		if s.dmz {
			servers = append(servers, fmt.Sprintf("10.%d.200.10", s.k), fmt.Sprintf("10.%d.250.10", s.k))
		}
	}
	servers = append(servers, "192.0.2.10", "192.0.2.80")
	return clients, servers
}

// flows draws nflows distinct flows (duplicates only once every
// combination is used) and fills the expect column from tsim's trace of
// the written facts; flows the simulation cannot decide are not written.
func (n *network) flows(ctx context.Context, factsDir string, nflows int) ([]string, string, error) {
	if nflows == 0 {
		return nil, "none", nil
	}
	f, err := facts.Load(ctx, factsDir)
	if err != nil {
		return nil, "", fmt.Errorf("loading the generated facts: %w", err)
	}
	eng := trace.New(f)
	clients, servers := n.endpoints()
	if len(clients) == 0 {
		return nil, "", fmt.Errorf("--routers %d: no site has a LAN, so no flows (use at least 5 routers)", len(n.routers))
	}
	space := len(clients) * len(servers) * len(services)
	seen := map[string]bool{}
	disp := map[string]int{}
	var out []string
	skipped := 0
	for tries := 0; len(out) < nflows; tries++ {
		if tries > 50*nflows+1000 {
			return nil, "", fmt.Errorf("could not draw %d decidable flows (%d undecided)", nflows, skipped)
		}
		src := clients[n.rng.IntN(len(clients))]
		dst := servers[n.rng.IntN(len(servers))]
		svc := services[n.rng.IntN(len(services))]
		if strings.HasSuffix(dst, ".250.10") && n.rng.IntN(4) != 0 {
			svc = services[0] // the VIP publishes https
		}
		key := src + "," + dst + "," + svc.spec
		if seen[key] && len(seen) < space {
			continue
		}
		fl := &doc.Flow{ID: "f" + strconv.Itoa(len(out)+1), Src: src, Dst: dst, Proto: svc.proto, Service: svc.spec}
		if svc.proto != "icmp" {
			fl.DPort, _ = strconv.Atoi(strings.Split(svc.spec, "/")[0])
		}
		t := eng.Trace(ctx, fl)
		var expect string
		switch t.Disposition {
		case doc.Delivered, doc.ExitsNetwork:
			expect = "allow"
		case doc.Denied, doc.NoRoute, doc.NullRouted, doc.Loop:
			expect = "deny"
		default:
			skipped++
			seen[key] = true
			continue
		}
		seen[key] = true
		disp[t.Disposition]++
		out = append(out, key+","+expect)
	}
	var keys []string
	for k := range disp {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, disp[k]))
	}
	if skipped > 0 {
		parts = append(parts, fmt.Sprintf("%d undecided skipped", skipped))
	}
	return out, strings.Join(parts, ", "), nil
}
