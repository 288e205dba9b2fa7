package hosts

import (
	"net/netip"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/facts"
)

// tinyFacts is a two-router network built by hand from the model:
//
//	LAN A 10.0.1.0/24 — r1 — 10.0.12.0/30 — r2 — LAN B 10.0.2.0/24 (— r3)
//	                                         r2 — uplink 203.0.113.0/24 (Internet)
//
// r1 forwards only udp/9999 (FORWARD policy DROP), so its counters show
// exactly the probes a test sends.
func tinyFacts() *facts.Facts {
	pos := func(file string, line int) facts.Pos { return facts.Pos{File: file, Line: line} }
	iface := func(file string, line int, name, addr string) *facts.Interface {
		return &facts.Interface{Name: name, Kind: "ether", Flags: []string{"BROADCAST", "MULTICAST", "UP", "LOWER_UP"},
			State: "UP", MTU: 1500, Pos: pos(file, line),
			Addrs: []*facts.IfAddr{{Prefix: netip.MustParsePrefix(addr), Scope: "global", Pos: pos(file, line+1)}}}
	}
	route := func(file string, line int, text, dst, gw, dev string) *facts.Route {
		r := &facts.Route{Type: facts.RouteUnicast, Dst: netip.MustParsePrefix(dst), Dev: dev, Text: text, Pos: pos(file, line)}
		if gw != "" {
			r.Gateway = netip.MustParseAddr(gw)
		}
		return r
	}
	r1 := &facts.Router{Name: "r1", File: "r1_facts.txt",
		Interfaces: []*facts.Interface{iface("r1_facts.txt", 10, "eth0", "10.0.1.1/24"), iface("r1_facts.txt", 13, "eth1", "10.0.12.1/30")},
		Tables: []*facts.Table{{ID: facts.TableMain, Name: "main", Routes: []*facts.Route{
			route("r1_facts.txt", 20, "10.0.2.0/24 via 10.0.12.2 dev eth1", "10.0.2.0/24", "10.0.12.2", "eth1"),
			route("r1_facts.txt", 21, "default via 10.0.12.2 dev eth1", "0.0.0.0/0", "10.0.12.2", "eth1"),
		}}},
		Iptables: r1Iptables(),
	}
	r2 := &facts.Router{Name: "r2", File: "r2_facts.txt",
		Interfaces: []*facts.Interface{iface("r2_facts.txt", 10, "eth0", "10.0.12.2/30"), iface("r2_facts.txt", 13, "eth1", "10.0.2.1/24"),
			iface("r2_facts.txt", 16, "eth2", "203.0.113.10/24")},
		Tables: []*facts.Table{{ID: facts.TableMain, Name: "main", Routes: []*facts.Route{
			route("r2_facts.txt", 20, "10.0.1.0/24 via 10.0.12.1 dev eth0", "10.0.1.0/24", "10.0.12.1", "eth0"),
			route("r2_facts.txt", 21, "default via 203.0.113.1 dev eth2", "0.0.0.0/0", "203.0.113.1", "eth2"),
		}}},
	}
	r3 := &facts.Router{Name: "r3", File: "r3_facts.txt",
		Interfaces: []*facts.Interface{iface("r3_facts.txt", 10, "eth0", "10.0.2.3/24")},
		Tables: []*facts.Table{{ID: facts.TableMain, Name: "main", Routes: []*facts.Route{
			route("r3_facts.txt", 20, "default via 10.0.2.1 dev eth0", "0.0.0.0/0", "10.0.2.1", "eth0"),
		}}},
	}
	return &facts.Facts{Source: "test:tiny", Digest: "sha256:tiny", Format: "builtin", Routers: []*facts.Router{r1, r2, r3}}
}

// tinyDoc has one flow between the two LANs.
func tinyDoc() *doc.Document {
	d := doc.New()
	d.Flows = []*doc.Flow{{ID: "f1", Src: "10.0.1.10", Dst: "10.0.2.10", Proto: "udp", DPort: 9999}}
	return d
}

// r1Iptables parses r1's firewall with the facts parser (the trace engine
// needs the parsed matches, not only the text).
func r1Iptables() []*facts.IPTable {
	const save = `*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -p udp -m udp --dport 9999 -j ACCEPT
-A FORWARD -p udp -m udp --sport 9999 -j ACCEPT
COMMIT
`
	t, _, err := facts.ParseIptablesSave("r1_facts.txt", 30, save)
	if err != nil {
		panic(err)
	}
	return t
}
