package trace

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/facts"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// golden compares got with testdata/golden/name, rewriting it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		gl, wl := bytes.Split(got, []byte("\n")), bytes.Split(want, []byte("\n"))
		for i := 0; i < len(gl) || i < len(wl); i++ {
			var g, w []byte
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if !bytes.Equal(g, w) {
				t.Errorf("%s differs from the golden file at line %d (go test -update rewrites it):\n got: %s\nwant: %s", p, i+1, g, w)
				return
			}
		}
	}
}

// goldenSet traces flows on e and checks the JSON document and the text
// rendering (plain and coloured) against golden files.
func goldenSet(t *testing.T, e *Engine, name string, specs [][4]string) {
	t.Helper()
	var gs []gflow
	for _, s := range specs {
		gs = append(gs, gflow{src: s[0], dst: s[1], spec: s[2], ingress: s[3]})
	}
	goldenFlows(t, e, name, gs)
}

// gflow is one line of a golden set: SPEC flows from src to dst.
type gflow struct {
	why                     string // what the flow covers
	src, dst, spec, ingress string
	sport                   int
	want                    string // expected disposition of every flow of the line
}

func goldenFlows(t *testing.T, e *Engine, name string, gs []gflow) {
	t.Helper()
	d := doc.New()
	want := map[string]gflow{}
	for _, s := range gs {
		fl, err := FlowsFromSpec(s.src, s.dst, s.spec, s.sport)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fl {
			f.ID = "f" + strconv.Itoa(len(d.Flows)+1)
			f.Ingress = s.ingress
			d.Flows = append(d.Flows, f)
			want[f.ID] = s
		}
	}
	tr, err := e.TraceAll(context.Background(), d.Flows)
	if err != nil {
		t.Fatal(err)
	}
	d.Trace = tr
	for _, x := range tr {
		if w := want[x.Flow]; w.want != "" && x.Disposition != w.want {
			t.Errorf("%s (%s): %s, want %s: %s", x.Flow, w.why, x.Disposition, w.want, x.Reason)
		}
	}
	var js, txt, col bytes.Buffer
	if err := doc.Write(&js, d); err != nil {
		t.Fatal(err)
	}
	if err := RenderText(&txt, d, false); err != nil {
		t.Fatal(err)
	}
	if err := RenderText(&col, d, true); err != nil {
		t.Fatal(err)
	}
	golden(t, name+".json", js.Bytes())
	golden(t, name+".txt", txt.Bytes())
	golden(t, name+".color.txt", col.Bytes())
}

func TestGoldenLab(t *testing.T) {
	goldenSet(t, loadLab(t), "lab", [][4]string{
		{"10.0.1.5", "10.0.3.9", "", ""},
		{"10.0.1.5", "10.0.2.5", "1003,2001,2002,2005,2008,2009", ""},
		{"10.0.1.5", "10.0.2.200", "2010", ""},
		{"10.0.1.5", "8.8.8.8", "https", ""},
		{"198.51.100.7", "203.0.113.2", "8080", "r2:eth9"},
		{"10.0.1.5", "10.0.3.9", "23,24", ""},
		{"10.0.1.66", "10.0.3.9", "icmp", ""},
		{"10.0.1.77", "10.0.3.9", "25,26", ""},
		{"10.0.3.9", "172.16.0.1", "", ""},
		{"10.0.1.5", "10.9.1.1", "", ""},
		{"192.0.2.9", "10.0.1.5", "", ""},
		{"10.0.12.1", "10.0.3.9", "ssh", ""},
		{"10.0.1.5", "10.0.12.2", "22,80", ""},
	})
}

func TestGoldenCorpus(t *testing.T) {
	goldenSet(t, New(loadCorpus(t, "raw_facts")), "corpus-raw", [][4]string{
		{"10.1.10.25", "10.3.20.100", "", ""},
		{"10.1.10.25", "10.3.20.100", "ssh,10000/udp", ""},
		{"10.1.3.50", "10.2.5.20", "10000", ""},
		{"10.2.5.1", "10.99.99.99", "", ""},
		{"10.1.1.1", "10.2.1.1", "", ""},
		{"10.3.20.5", "8.8.8.8", "", ""},
		{"198.51.100.99", "203.0.113.10", "80", ""},
	})
}

// TestGoldenExample traces flows of the built-in example chosen so that,
// together, they use each policy selector and action, each route type and
// each disposition (docs/example-network.md describes the example).
func TestGoldenExample(t *testing.T) {
	f, err := facts.Load(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	goldenFlows(t, New(f), "example", []gflow{
		{why: "fwmark/mask rule after mangle MARK", src: "10.1.10.9", dst: "10.3.10.9", spec: "8443"},
		{why: "tos rule after mangle TOS", src: "10.1.10.9", dst: "10.2.0.9", spec: "ssh"},
		{why: "ipproto + dport range rule", src: "10.2.10.9", dst: "10.1.10.9", spec: "5060/udp"},
		{why: "from + ipproto + sport rule", src: "10.1.20.10", dst: "10.3.10.9", spec: "1000", sport: 443},
		{why: "iif + to + ipproto + dport + prohibit rule", src: "10.2.10.9", dst: "10.1.30.9", spec: "ssh", want: "NULL_ROUTED"},
		{why: "goto, suppress_prefixlength, unreachable rule", src: "10.1.30.9", dst: "8.8.8.8", spec: "https", want: "NULL_ROUTED"},
		{why: "goto then main", src: "10.1.30.9", dst: "10.2.0.9", spec: "icmp"},
		{why: "not from rule, throw route, ECMP", src: "10.2.10.9", dst: "10.3.100.9", spec: "icmp"},
		{why: "blackhole route in a policy table", src: "10.2.99.9", dst: "10.2.0.9", spec: "icmp", want: "NULL_ROUTED"},
		{why: "prohibit route", src: "10.3.10.9", dst: "10.3.200.9", spec: "icmp"},
		{why: "exits with MASQUERADE", src: "10.2.10.9", dst: "8.8.8.8", spec: "https", want: "EXITS_NETWORK"},
		{why: "policy table isp2 and SNAT", src: "10.1.50.25", dst: "8.8.8.8", spec: "smtp"},
		{why: "DNAT from the Internet, custom chain RETURN", src: "8.8.4.4", dst: "203.0.113.5", spec: "https", ingress: "inet-gw:eth0", want: "DELIVERED"},
		{why: "bogon source dropped in a custom chain", src: "198.18.0.1", dst: "203.0.113.5", spec: "https", ingress: "inet-gw:eth0", want: "DENIED"},
		{why: "blackhole rule against spoofing", src: "198.51.100.3", dst: "10.1.50.10", spec: "https", ingress: "inet-gw:eth0", want: "NULL_ROUTED"},
		{why: "rp_filter strict", src: "203.0.113.1", dst: "198.51.100.1", spec: "3306", want: "NO_ROUTE"},
		{why: "hash:ip ipset DROP", src: "10.2.10.66", dst: "10.1.20.10", spec: "ssh", want: "DENIED"},
		{why: "hash:ip,port ipset dst,dst ACCEPT", src: "10.2.10.9", dst: "10.1.20.10", spec: "ssh"},
		{why: "custom chain RETURN and hash:net,port src,dst", src: "10.3.10.9", dst: "10.3.20.9", spec: "postgres"},
		{why: "local route on lo", src: "10.1.10.9", dst: "10.1.50.53", spec: "dns"},
		{why: "INPUT chain", src: "10.1.10.9", dst: "10.1.1.1", spec: "ssh,http"},
		{why: "INPUT via a custom chain: ACCEPT and RETURN", src: "10.1.30.9", dst: "10.1.1.1", spec: "ssh,http"},
		{why: "originated by a router", src: "10.1.1.1", dst: "10.3.10.9", spec: "icmp"},
		{why: "no route", src: "10.3.20.9", dst: "8.8.8.8", spec: "icmp", want: "NO_ROUTE"},
		{why: "unknown source", src: "192.0.2.1", dst: "10.1.10.9", spec: "icmp", want: "UNKNOWN_SOURCE"},
		{why: "host on a subnet shared by two routers", src: "10.2.0.9", dst: "10.3.10.9", spec: "icmp"},
		{why: "routing loop; oif and uidrange rules passed over, nop rule used", src: "10.1.10.9", dst: "10.99.0.9", spec: "icmp", want: "LOOP"},
		{why: "a match not simulated (connlimit)", src: "10.3.100.9", dst: "10.3.10.9", spec: "9090", want: "UNKNOWN"},
		{why: "a subnet broadcast: the local table's broadcast route, INPUT drops it", src: "10.2.99.5", dst: "198.51.100.7", spec: "https", want: "DENIED"},
		{why: "a subnet broadcast: INPUT accepts, the echo is ignored", src: "10.1.10.9", dst: "10.1.1.255", spec: "icmp", want: "NULL_ROUTED"},
		{why: "a broadcast's source validated from 0.0.0.0 (brd_input): the from-rule to isp2 does not apply, rp_filter passes", src: "203.0.113.1", dst: "198.51.100.7", spec: "icmp", want: "NULL_ROUTED"},
	})
}
