package trace

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/portspec"
	"github.com/tsim-dev/tsim/internal/tsimerr"
)

// FlowsFromSpec builds one flow per service of spec from src to dst (an
// empty spec is one ICMP echo flow), with ids f1, f2, … . sport 0 leaves the
// source port unset (the engine then uses EphemeralPort).
func FlowsFromSpec(src, dst, spec string, sport int) ([]*doc.Flow, error) {
	return appendFlows(nil, src, dst, spec, sport, "", "")
}

func appendFlows(out []*doc.Flow, src, dst, spec string, sport int, expect, ingress string) ([]*doc.Flow, error) {
	for _, a := range []struct{ what, v string }{{"source", src}, {"destination", dst}} {
		if _, err := netip.ParseAddr(a.v); err != nil {
			return nil, tsimerr.Inputf("%s %q is not an IP address", a.what, a.v)
		}
	}
	if sport < 0 || sport > 65535 {
		return nil, tsimerr.Inputf("source port %d out of range 0-65535", sport)
	}
	var svcs []portspec.Service
	if strings.TrimSpace(spec) == "" {
		svcs = []portspec.Service{{Proto: "icmp", Token: "icmp"}}
	} else {
		var err error
		if svcs, err = portspec.Parse(spec); err != nil {
			return nil, err
		}
	}
	for _, s := range svcs {
		f := &doc.Flow{ID: "f" + strconv.Itoa(len(out)+1), Src: src, Dst: dst, Proto: s.Proto, DPort: s.Port,
			Service: s.Token, Expect: expect, Ingress: ingress}
		if s.Proto != "icmp" {
			f.SPort = sport
		}
		out = append(out, f)
	}
	return out, nil
}

// flowLine is one NDJSON line of a flows file: either a spec ("spec",
// alias "services") or an explicit flow (proto, dport).
type flowLine struct {
	Src      string `json:"src"`
	Dst      string `json:"dst"`
	Spec     string `json:"spec"`
	Services string `json:"services"`
	Proto    string `json:"proto"`
	SPort    int    `json:"sport"`
	DPort    int    `json:"dport"`
	Expect   string `json:"expect"`
	Ingress  string `json:"ingress"`
}

// ReadFlowsFile reads flows, one per line, as NDJSON objects
// ({"src","dst","spec"} or {"src","dst","proto","dport"}, optional sport,
// expect, ingress) or CSV `src,dst,spec[,expect]` (quote a spec holding
// commas, or leave it unquoted when the expect column is allow/deny). A CSV
// header line, blank lines and '#' comments are skipped. Flows get ids f1,
// f2, … in file order; errors name the line.
func ReadFlowsFile(r io.Reader) ([]*doc.Flow, error) {
	var out []*doc.Flow
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if n == 1 {
			line = strings.TrimPrefix(line, "\ufeff")
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var err error
		before := len(out)
		if strings.HasPrefix(line, "{") {
			out, err = jsonFlow(out, line)
		} else {
			out, err = csvFlow(out, line)
		}
		if err != nil {
			return nil, tsimerr.Inputf("flows file line %d: %w", n, err)
		}
		for _, f := range out[before:] {
			f.Line = n
		}
	}
	if err := sc.Err(); err != nil {
		return nil, tsimerr.Inputf("flows file line %d: %w", n+1, err)
	}
	if len(out) == 0 {
		return nil, tsimerr.Inputf("flows file: no flows")
	}
	return out, nil
}

func jsonFlow(out []*doc.Flow, line string) ([]*doc.Flow, error) {
	dec := json.NewDecoder(strings.NewReader(line))
	dec.DisallowUnknownFields()
	var l flowLine
	if err := dec.Decode(&l); err != nil {
		return nil, fmt.Errorf("bad JSON: %w", err)
	}
	exp, err := normExpect(l.Expect)
	if err != nil {
		return nil, err
	}
	spec := l.Spec
	if spec == "" {
		spec = l.Services
	}
	if l.Proto != "" {
		if spec != "" {
			return nil, fmt.Errorf("give either spec or proto/dport, not both")
		}
		switch p := strings.ToLower(l.Proto); p {
		case "icmp":
			spec = "icmp"
		case "tcp", "udp":
			if l.DPort < 1 || l.DPort > 65535 {
				return nil, fmt.Errorf("dport %d out of range 1-65535", l.DPort)
			}
			spec = strconv.Itoa(l.DPort) + "/" + p
		default:
			return nil, fmt.Errorf("proto %q (want tcp, udp or icmp)", l.Proto)
		}
	}
	if l.Src == "" || l.Dst == "" {
		return nil, fmt.Errorf("src and dst are required")
	}
	return appendFlows(out, l.Src, l.Dst, spec, l.SPort, exp, l.Ingress)
}

func csvFlow(out []*doc.Flow, line string) ([]*doc.Flow, error) {
	cr := csv.NewReader(strings.NewReader(line))
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	rec, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("bad CSV: %w", err)
	}
	for i := range rec {
		rec[i] = strings.TrimSpace(rec[i])
	}
	if strings.EqualFold(rec[0], "src") || strings.EqualFold(rec[0], "source") {
		return out, nil // header
	}
	if len(rec) < 2 {
		return nil, fmt.Errorf("want src,dst,spec[,expect]")
	}
	spec, expect := "", ""
	rest := rec[2:]
	if len(rest) > 1 {
		if e, err := normExpect(rest[len(rest)-1]); err == nil && e != "" {
			expect, rest = e, rest[:len(rest)-1]
		}
	}
	spec = strings.Join(rest, ",")
	return appendFlows(out, rec[0], rec[1], spec, 0, expect, "")
}

// normExpect maps the words people write for an expectation to allow/deny.
func normExpect(s string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "":
		return "", nil
	case "allow", "allowed", "accept", "pass", "reachable", "open", "yes":
		return "allow", nil
	case "deny", "denied", "drop", "block", "blocked", "unreachable", "closed", "no":
		return "deny", nil
	}
	return "", fmt.Errorf("expect %q: want allow or deny", s)
}
