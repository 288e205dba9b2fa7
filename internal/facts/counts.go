package facts

import (
	"net/netip"
	"sort"
)

// RouterCounts is one router of `tsim facts show --json` (DESIGN §14).
type RouterCounts struct {
	Name       string `json:"name"`
	Interfaces int    `json:"interfaces"`
	// Addresses counts every interface address, IPv4 and IPv6, except
	// loopback ones (127.0.0.0/8, ::1).
	Addresses int `json:"addresses"`
	// Rules counts policy rules including the kernel's default ones.
	Rules  int `json:"rules"`
	Tables int `json:"tables"`
	// Routes counts the routes of every collected table.
	Routes int `json:"routes"`
	// IptablesRules counts every rule line (-A) of every netfilter table.
	IptablesRules int `json:"iptables_rules"`
	Ipsets        int `json:"ipsets"`
	IpsetMembers  int `json:"ipset_members"`
	// Subnets are the connected IPv4 prefixes, masked, loopback excluded,
	// sorted and unique.
	Subnets []string `json:"subnets"`
}

// Counts summarizes a router for `facts show`.
func Counts(r *Router) RouterCounts {
	c := RouterCounts{Name: r.Name, Interfaces: len(r.Interfaces), Rules: len(r.Rules), Tables: len(r.Tables),
		Ipsets: len(r.Ipsets), Subnets: []string{}}
	seen := map[netip.Prefix]bool{}
	var subnets []netip.Prefix
	for _, i := range r.Interfaces {
		for _, a := range i.Addrs {
			if a.Prefix.Addr().IsLoopback() {
				continue
			}
			c.Addresses++
			p := ConnectedPrefix(a)
			if p.Addr().Is4() && !seen[p] {
				seen[p] = true
				subnets = append(subnets, p)
			}
		}
	}
	sort.Slice(subnets, func(i, j int) bool {
		if c := subnets[i].Addr().Compare(subnets[j].Addr()); c != 0 {
			return c < 0
		}
		return subnets[i].Bits() < subnets[j].Bits()
	})
	for _, p := range subnets {
		c.Subnets = append(c.Subnets, p.String())
	}
	for _, t := range r.Tables {
		c.Routes += len(t.Routes)
	}
	for _, t := range r.Iptables {
		for _, ch := range t.Chains {
			c.IptablesRules += len(ch.Rules)
		}
	}
	for _, s := range r.Ipsets {
		c.IpsetMembers += len(s.Members)
	}
	return c
}

// ConnectedPrefix is the masked subnet an address makes connected: the
// peer's prefix for a point-to-point address, else the address's own.
func ConnectedPrefix(a *IfAddr) netip.Prefix {
	if a.Peer.IsValid() {
		return a.Peer.Masked()
	}
	return a.Prefix.Masked()
}
