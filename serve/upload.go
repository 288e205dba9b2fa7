package serve

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/facts"
)

// Formats of an uploaded path.
const (
	pathPredecessor = "predecessor trace JSON"
	pathDocument    = "tsim document"
)

// Limits of an uploaded path.
const (
	maxTraceBytes = 100_000 // the predecessor's own limit
	maxPathHops   = 64
)

// userPath is a path the user uploaded instead of letting the job
// simulate one; it is stored as path.json in the job directory.
type userPath struct {
	Format      string     `json:"format"`
	Src         string     `json:"src"`
	Dst         string     `json:"dst"`
	Disposition string     `json:"disposition"`
	Hops        []*doc.Hop `json:"hops"`
}

// traces gives every flow of a job the user's path.
func (p *userPath) traces(flows []*doc.Flow) []*doc.Trace {
	out := make([]*doc.Trace, 0, len(flows))
	for _, fl := range flows {
		hops := make([]*doc.Hop, 0, len(p.Hops))
		for _, h := range p.Hops {
			c := *h
			c.Steps = []*doc.Step{}
			hops = append(hops, &c)
		}
		out = append(out, &doc.Trace{Flow: fl.ID, Disposition: p.Disposition, Hops: hops,
			Reason: "path given by the user (" + p.Format + "); not simulated"})
	}
	return out
}

// predecessorTrace is what the predecessor's `tsimsh trace -j` printed
// (reference web.md §3.4, reach.md §1.2).
type predecessorTrace struct {
	Success     *bool             `json:"success"`
	Source      string            `json:"source"`
	Destination string            `json:"destination"`
	Path        []json.RawMessage `json:"path"`
}

type predecessorHop struct {
	Hop      *int    `json:"hop"`
	Name     string  `json:"name"`
	IP       string  `json:"ip"`
	Incoming string  `json:"incoming"`
	Outgoing string  `json:"outgoing"`
	IsRouter *bool   `json:"is_router"`
	PrevHop  string  `json:"prev_hop"`
	NextHop  string  `json:"next_hop"`
	RTT      float64 `json:"rtt"`
}

// parseUserPath reads an uploaded trace in either format and checks it
// against the facts: every router exists, every interface named exists on
// its router. Errors are one line for a 400.
func parseUserPath(data []byte, f *facts.Facts) (*userPath, error) {
	if len(data) > maxTraceBytes {
		return nil, fmt.Errorf("trace: %d bytes; at most %d", len(data), maxTraceBytes)
	}
	data = bytes.TrimSpace(bytes.TrimPrefix(data, []byte("\ufeff")))
	if len(data) == 0 || data[0] != '{' {
		return nil, errors.New("trace: not a JSON object (want the predecessor's trace JSON or a tsim document)")
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("trace: not JSON: %v", err)
	}
	var p *userPath
	var err error
	switch {
	case probe["schema"] != nil:
		p, err = documentPath(data)
	case probe["path"] != nil:
		p, err = predecessorPath(data)
	default:
		return nil, errors.New(`trace: neither a tsim document (no "schema") nor the predecessor's trace JSON (no "path")`)
	}
	if err != nil {
		return nil, fmt.Errorf("trace (%s): %w", formatOf(probe), err)
	}
	if err := checkPath(p, f); err != nil {
		return nil, fmt.Errorf("trace (%s): %w", p.Format, err)
	}
	return p, nil
}

func formatOf(probe map[string]json.RawMessage) string {
	if probe["schema"] != nil {
		return pathDocument
	}
	return pathPredecessor
}

func predecessorPath(data []byte) (*userPath, error) {
	var t predecessorTrace
	if err := json.Unmarshal(data, &t); err != nil {
		return nil, fmt.Errorf("malformed: %v", err)
	}
	if t.Success != nil && !*t.Success {
		return nil, errors.New(`the trace failed ("success": false); there is no path to test`)
	}
	src, err := ipv4(t.Source)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	dst, err := ipv4(t.Destination)
	if err != nil {
		return nil, fmt.Errorf("destination: %w", err)
	}
	if len(t.Path) == 0 {
		return nil, errors.New("path is empty")
	}
	if len(t.Path) > maxPathHops {
		return nil, fmt.Errorf("path has %d hops; at most %d", len(t.Path), maxPathHops)
	}
	p := &userPath{Format: pathPredecessor, Src: src, Dst: dst, Disposition: doc.Delivered}
	p.Hops = append(p.Hops, &doc.Hop{Node: src, Kind: doc.HopHost, IP: src, Steps: []*doc.Step{}})
	last := 0
	for i, raw := range t.Path {
		var h predecessorHop
		if err := json.Unmarshal(raw, &h); err != nil {
			return nil, fmt.Errorf("hop %d: not an object with hop, name, ip, incoming, outgoing, is_router: %v", i+1, err)
		}
		if h.Hop == nil || *h.Hop < 1 || *h.Hop <= last {
			return nil, fmt.Errorf("hop %d: \"hop\" must be a number ≥ 1, rising", i+1)
		}
		last = *h.Hop
		ip, err := ipv4(h.IP)
		if err != nil {
			return nil, fmt.Errorf("hop %d: ip: %w", *h.Hop, err)
		}
		if h.IsRouter != nil && *h.IsRouter {
			p.Hops = append(p.Hops, &doc.Hop{Node: h.Name, Kind: doc.HopRouter, IP: ip, In: h.Incoming, Out: h.Outgoing, Steps: []*doc.Step{}})
			continue
		}
		if ip == src || ip == dst {
			continue // the endpoints are added around the routers
		}
		p.Hops = append(p.Hops, &doc.Hop{Node: ip, Kind: doc.HopHost, IP: ip, Steps: []*doc.Step{}})
	}
	p.Hops = append(p.Hops, &doc.Hop{Node: dst, Kind: doc.HopHost, IP: dst, Steps: []*doc.Step{}})
	return p, nil
}

// documentPath takes the path of the first traced flow of a tsim document
// (`tsim trace --json`); every traced flow must share its source and
// destination.
func documentPath(data []byte) (*userPath, error) {
	d, err := doc.Parse(data)
	if err != nil {
		return nil, err
	}
	if len(d.Trace) == 0 {
		return nil, errors.New(`no "trace" section (upload the output of tsim trace --json)`)
	}
	flows := map[string]*doc.Flow{}
	for _, fl := range d.Flows {
		flows[fl.ID] = fl
	}
	t := d.Trace[0]
	fl := flows[t.Flow]
	if fl == nil {
		return nil, fmt.Errorf("trace of flow %q: no such flow in the document's \"flows\"", t.Flow)
	}
	for _, o := range d.Trace[1:] {
		if of := flows[o.Flow]; of != nil && (of.Src != fl.Src || of.Dst != fl.Dst) {
			return nil, fmt.Errorf("flows %s and %s differ in source or destination; upload one question", fl.ID, of.ID)
		}
	}
	src, err := ipv4(fl.Src)
	if err != nil {
		return nil, fmt.Errorf("flow %s source: %w", fl.ID, err)
	}
	dst, err := ipv4(fl.Dst)
	if err != nil {
		return nil, fmt.Errorf("flow %s destination: %w", fl.ID, err)
	}
	if len(t.Hops) == 0 {
		return nil, fmt.Errorf("trace of flow %s has no hops", fl.ID)
	}
	if len(t.Hops) > maxPathHops {
		return nil, fmt.Errorf("path has %d hops; at most %d", len(t.Hops), maxPathHops)
	}
	p := &userPath{Format: pathDocument, Src: src, Dst: dst, Disposition: t.Disposition}
	switch t.Disposition {
	case doc.Delivered, doc.ExitsNetwork, doc.Denied, doc.NoRoute, doc.NullRouted, doc.Loop:
	default:
		return nil, fmt.Errorf("trace of flow %s: disposition %q has no path to test", fl.ID, t.Disposition)
	}
	for i, h := range t.Hops {
		if h == nil {
			return nil, fmt.Errorf("hop %d: null", i+1)
		}
		switch h.Kind {
		case doc.HopRouter, doc.HopHost, doc.HopInternet:
		default:
			return nil, fmt.Errorf("hop %d: kind %q (want router, host or internet)", i+1, h.Kind)
		}
		p.Hops = append(p.Hops, &doc.Hop{Node: h.Node, Kind: h.Kind, IP: h.IP, In: h.In, Out: h.Out, Steps: []*doc.Step{}})
	}
	return p, nil
}

func ipv4(s string) (string, error) {
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil || !a.Is4() {
		return "", fmt.Errorf("%q is not an IPv4 address", s)
	}
	return a.String(), nil
}

// checkPath: at least one router; every router of the path exists in the
// facts (a name given as an FQDN matches its first label) and every
// interface it names exists there.
func checkPath(p *userPath, f *facts.Facts) error {
	routers := 0
	for i, h := range p.Hops {
		if h.Kind != doc.HopRouter {
			continue
		}
		routers++
		r := f.Router(h.Node)
		if r == nil {
			if short, _, ok := strings.Cut(h.Node, "."); ok {
				r = f.Router(short)
			}
		}
		if r == nil {
			return fmt.Errorf("hop %d: router %q is not in the facts (%s)", i+1, h.Node, f.Source)
		}
		h.Node = r.Name
		for _, ifc := range []string{h.In, h.Out} {
			if ifc != "" && r.Interface(ifc) == nil {
				return fmt.Errorf("hop %d: router %s has no interface %q", i+1, r.Name, ifc)
			}
		}
		if h.IP != "" {
			if _, err := ipv4(h.IP); err != nil {
				return fmt.Errorf("hop %d: ip: %w", i+1, err)
			}
		}
	}
	if routers == 0 {
		return errors.New("the path crosses no router")
	}
	return nil
}
