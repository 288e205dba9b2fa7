// Package flowtest turns a flows file into firewall unit tests: it reads the
// file (CSV as a spreadsheet writes it, or NDJSON), judges each line's
// expectation against a simulated trace or a live reach result (PASS, FAIL,
// UNKNOWN), counts the results, and writes them as CSV rows or JUnit XML.
// `tsim trace --flows`, `tsim run --flows` and `tsim serve` share it. It
// computes no trace and probes nothing; it imports no CLI library.
package flowtest

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/portspec"
	"github.com/tsim-dev/tsim/internal/tsimerr"
	"github.com/tsim-dev/tsim/trace"
)

// File is a parsed flows file.
type File struct {
	Name  string  // as given (the path), used in messages and reports
	Lines []*Line // the lines that hold a flow, in file order
}

// Line is one test: one line of the flows file, one flow per service.
type Line struct {
	N      int    // 1-based line number in the file
	Name   string // the `name` column, if any
	Expect string // allow | deny | "" (no expectation)
	Flows  []*doc.Flow
}

// Flows returns every flow of the file, in order (ids f1, f2, …).
func (f *File) Flows() []*doc.Flow {
	var out []*doc.Flow
	for _, l := range f.Lines {
		out = append(out, l.Flows...)
	}
	return out
}

// ExpectWords are the words the expect column accepts, by meaning; the
// first of each list is the canonical one.
var ExpectWords = map[string][]string{
	"allow": {"allow", "allowed", "permit", "permitted", "accept", "accepted", "pass", "reachable"},
	"deny":  {"deny", "denied", "block", "blocked", "drop", "dropped", "reject", "rejected", "unreachable"},
}

// NormExpect maps an expect word to allow, deny or "" (empty cell).
func NormExpect(s string) (string, error) {
	w := strings.ToLower(strings.TrimSpace(s))
	if w == "" {
		return "", nil
	}
	for _, canon := range []string{"allow", "deny"} {
		for _, x := range ExpectWords[canon] {
			if w == x {
				return canon, nil
			}
		}
	}
	return "", fmt.Errorf("unknown word %q (want allow, permit, accept, pass, deny, block, drop or reject, or leave it empty)", s)
}

// columns a CSV header may name, by canonical name.
var columnNames = map[string]string{
	"src": "src", "source": "src",
	"dst": "dst", "destination": "dst", "dest": "dst",
	"spec": "spec", "services": "spec", "service": "spec", "ports": "spec", "port": "spec",
	"expect": "expect", "expected": "expect", "expectation": "expect",
	"ingress": "ingress", "sport": "sport", "name": "name",
	"comment": "", "description": "", "note": "", "notes": "",
}

// positional is the column order of a file without a header.
var positional = []string{"src", "dst", "spec", "expect"}

// Read reads a flows file: CSV (a header row naming the columns src, dst,
// spec, expect and optionally ingress, sport, name, comment; without a
// header the columns are src,dst,spec[,expect]) or NDJSON objects
// ({"src","dst","spec"} or {"src","dst","proto","dport"}, optional sport,
// expect, ingress, name). CSV is read as a spreadsheet writes it: quoted
// fields ("https,3306/tcp"), empty cells, CRLF line ends, a UTF-8 byte
// order mark. Blank lines, rows of empty cells and '#' comments are skipped.
// Every error is one line, "NAME:LINE: …", naming the column, exit 2.
func Read(r io.Reader, name string) (*File, error) {
	f := &File{Name: name}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	var header []string // canonical column names, nil until a header is seen
	next := 1           // the next flow id
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if n == 1 {
			line = strings.TrimSpace(strings.TrimPrefix(line, "\ufeff"))
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		errf := func(format string, a ...any) error {
			return tsimerr.Inputf("%s:%d: %s", name, n, fmt.Sprintf(format, a...))
		}
		var l *Line
		var err error
		if strings.HasPrefix(line, "{") {
			l, err = jsonLine(line)
		} else {
			var rec []string
			if rec, err = csvRecord(line); err == nil {
				if isHeader(rec) {
					if len(f.Lines) > 0 || header != nil {
						return nil, errf("header row %q after the first flow", line)
					}
					if header, err = parseHeader(rec); err != nil {
						return nil, errf("%v", err)
					}
					continue
				}
				if allEmpty(rec) {
					continue
				}
				l, err = csvLine(rec, header)
			}
		}
		if err != nil {
			return nil, errf("%v", err)
		}
		l.N = n
		for _, fl := range l.Flows {
			fl.ID = "f" + strconv.Itoa(next)
			fl.Line = n
			fl.Expect = l.Expect
			next++
		}
		f.Lines = append(f.Lines, l)
	}
	if err := sc.Err(); err != nil {
		return nil, tsimerr.Inputf("%s:%d: %w", name, n+1, err)
	}
	if len(f.Lines) == 0 {
		return nil, tsimerr.Inputf("%s: no flows", name)
	}
	return f, nil
}

func csvRecord(line string) ([]string, error) {
	cr := csv.NewReader(strings.NewReader(line))
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	rec, err := cr.Read()
	if err != nil {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("bad CSV: %w", err)
	}
	for i := range rec {
		rec[i] = strings.TrimSpace(rec[i])
	}
	return rec, nil
}

// isHeader reports whether rec names columns: it has a src (or source)
// cell and no cell is an IP address.
func isHeader(rec []string) bool {
	named := false
	for _, c := range rec {
		if _, err := netip.ParseAddr(c); err == nil {
			return false
		}
		named = named || strings.EqualFold(c, "src") || strings.EqualFold(c, "source")
	}
	return named
}

func allEmpty(rec []string) bool {
	for _, c := range rec {
		if c != "" {
			return false
		}
	}
	return true
}

func parseHeader(rec []string) ([]string, error) {
	out := make([]string, len(rec))
	seen := map[string]bool{}
	for i, c := range rec {
		canon, ok := columnNames[strings.ToLower(c)]
		switch {
		case !ok && c == "":
			canon = "" // an empty trailing header cell: ignored like a comment
		case !ok:
			return nil, fmt.Errorf("header: unknown column %q (want src, dst, spec, expect, ingress, sport, name or comment)", c)
		case canon != "" && seen[canon]:
			return nil, fmt.Errorf("header: column %q twice", c)
		}
		seen[canon] = true
		out[i] = canon
	}
	for _, need := range []string{"src", "dst"} {
		if !seen[need] {
			return nil, fmt.Errorf("header: no %s column", need)
		}
	}
	return out, nil
}

// isPositional reports whether header is the legacy order src,dst,spec[,expect].
func isPositional(header []string) bool {
	if len(header) < 3 || len(header) > 4 {
		return false
	}
	for i, c := range header {
		if c != positional[i] {
			return false
		}
	}
	return true
}

func csvLine(rec []string, header []string) (*Line, error) {
	cells := map[string]string{}
	switch {
	case header != nil && !isPositional(header):
		if len(rec) > len(header) && !allEmpty(rec[len(header):]) {
			return nil, fmt.Errorf("%d fields, the header names %d (quote a spec that holds commas: \"https,3306/tcp\")", len(rec), len(header))
		}
		for i, c := range header {
			if i < len(rec) && c != "" {
				cells[c] = rec[i]
			}
		}
	default:
		// src,dst,spec[,expect]; a spec may be unquoted with commas, then
		// the last field is the expectation when it is an expect word or
		// empty, else part of the spec.
		if len(rec) < 2 {
			return nil, fmt.Errorf("want src,dst[,spec[,expect]]")
		}
		cells["src"], cells["dst"] = rec[0], rec[1]
		rest := rec[2:]
		if len(rest) >= 2 {
			last := rest[len(rest)-1]
			_, err := NormExpect(last)
			switch {
			case err == nil:
				cells["expect"], rest = last, rest[:len(rest)-1]
			case len(rest) == 2 && !looksLikeSpec(last):
				col := "column 4 (expect)"
				if header != nil {
					col = "column expect"
				}
				return nil, fmt.Errorf("%s: %v", col, err)
			}
		}
		cells["spec"] = strings.Join(rest, ",")
	}
	sport := 0
	if s := cells["sport"]; s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 0 || v > 65535 {
			return nil, fmt.Errorf("column sport: %q is not a port (0-65535)", s)
		}
		sport = v
	}
	return newLine(cells["src"], cells["dst"], cells["spec"], cells["expect"], cells["ingress"], cells["name"], sport)
}

// looksLikeSpec reports whether a cell of a header-less line reads as a
// port or service (so the line's spec is unquoted, without expectation).
func looksLikeSpec(s string) bool {
	_, err := portspec.Parse(s)
	return s != "" && err == nil
}

func newLine(src, dst, spec, expect, ingress, name string, sport int) (*Line, error) {
	for _, c := range []struct{ col, v string }{{"src", src}, {"dst", dst}} {
		if c.v == "" {
			return nil, fmt.Errorf("column %s: empty", c.col)
		}
		if _, err := netip.ParseAddr(c.v); err != nil {
			return nil, fmt.Errorf("column %s: %q is not an IP address", c.col, c.v)
		}
	}
	exp, err := NormExpect(expect)
	if err != nil {
		return nil, fmt.Errorf("column expect: %w", err)
	}
	if ingress != "" && !strings.Contains(ingress, ":") {
		return nil, fmt.Errorf("column ingress: %q: want ROUTER:IFACE", ingress)
	}
	flows, err := trace.FlowsFromSpec(src, dst, spec, sport)
	if err != nil {
		return nil, fmt.Errorf("column spec: %w", err)
	}
	for _, fl := range flows {
		fl.Ingress = ingress
	}
	return &Line{Name: name, Expect: exp, Flows: flows}, nil
}

// jsonObj is one NDJSON line: either a spec ("spec", alias "services") or
// an explicit flow (proto, dport).
type jsonObj struct {
	Src      string `json:"src"`
	Dst      string `json:"dst"`
	Spec     string `json:"spec"`
	Services string `json:"services"`
	Proto    string `json:"proto"`
	SPort    int    `json:"sport"`
	DPort    int    `json:"dport"`
	Expect   string `json:"expect"`
	Ingress  string `json:"ingress"`
	Name     string `json:"name"`
}

func jsonLine(line string) (*Line, error) {
	dec := json.NewDecoder(strings.NewReader(line))
	dec.DisallowUnknownFields()
	var o jsonObj
	if err := dec.Decode(&o); err != nil {
		return nil, fmt.Errorf("bad JSON: %w", err)
	}
	spec := o.Spec
	if spec == "" {
		spec = o.Services
	}
	if o.Proto != "" {
		if spec != "" {
			return nil, fmt.Errorf("give either spec or proto/dport, not both")
		}
		switch p := strings.ToLower(o.Proto); p {
		case "icmp":
			spec = "icmp"
		case "tcp", "udp":
			if o.DPort < 1 || o.DPort > 65535 {
				return nil, fmt.Errorf("field dport: %d out of range 1-65535", o.DPort)
			}
			spec = strconv.Itoa(o.DPort) + "/" + p
		default:
			return nil, fmt.Errorf("field proto: %q (want tcp, udp or icmp)", o.Proto)
		}
	}
	if o.SPort < 0 || o.SPort > 65535 {
		return nil, fmt.Errorf("field sport: %d out of range 0-65535", o.SPort)
	}
	l, err := newLine(o.Src, o.Dst, spec, o.Expect, o.Ingress, o.Name, o.SPort)
	if err != nil {
		return nil, errors.New(strings.Replace(err.Error(), "column ", "field ", 1))
	}
	return l, nil
}

// ParseShard parses --shard I/N (1 <= I <= N).
func ParseShard(s string) (i, n int, err error) {
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 1 || i > n {
		return 0, 0, tsimerr.Inputf("--shard %q: want I/N with 1 <= I <= N, e.g. 2/4", s)
	}
	return i, n, nil
}

// Shard keeps the lines of shard i of n: the file's 1st, (n+1)th, …
// line for shard 1, its 2nd, (n+2)th, … for shard 2, so n machines that
// run shards 1..n run every line once. Flow ids and line numbers stay.
func (f *File) Shard(i, n int) *File {
	out := &File{Name: f.Name}
	for k, l := range f.Lines {
		if k%n == i-1 {
			out.Lines = append(out.Lines, l)
		}
	}
	return out
}
