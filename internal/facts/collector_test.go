package facts

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/tsim-dev/tsim/internal/testenv"
)

// collWrite writes the embedded collector to a temp file.
func collWrite(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "collector.sh")
	if err := os.WriteFile(p, []byte(CollectorScript()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCollectorSyntax proves the collector parses under the POSIX shells a
// router may have (it must not need bash).
func TestCollectorSyntax(t *testing.T) {
	p := collWrite(t)
	for _, sh := range []string{"sh", "dash", "bash", "busybox"} {
		bin, err := exec.LookPath(sh)
		if err != nil {
			t.Logf("%s not installed, skipped", sh)
			continue
		}
		args := []string{"-n", p}
		if sh == "busybox" {
			args = []string{"sh", "-n", p}
		}
		if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			t.Errorf("%s -n collector.sh: %v\n%s", sh, err, out)
		}
	}
	if strings.Contains(CollectorScript(), "#!/bin/bash") {
		t.Error("collector must be plain sh")
	}
}

type collSection struct {
	name, title, command, timestamp, body string
	exit                                  string
}

var collStart = regexp.MustCompile(`^=== TSIM_SECTION_START:(\w+) ===$`)

// collSplit checks the framing strictly and returns the sections.
func collSplit(t *testing.T, out string) (header []string, secs []collSection, trailer []string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	i := 0
	for ; i < len(lines) && !strings.HasPrefix(lines[i], "=== "); i++ {
		header = append(header, lines[i])
	}
	for i < len(lines) {
		m := collStart.FindStringSubmatch(lines[i])
		if m == nil {
			break
		}
		s := collSection{name: m[1]}
		want := []string{"TITLE: ", "COMMAND: ", "TIMESTAMP: "}
		dst := []*string{&s.title, &s.command, &s.timestamp}
		for k, p := range want {
			l := lines[i+1+k]
			if !strings.HasPrefix(l, p) {
				t.Fatalf("section %s line %d: want %q prefix, got %q", s.name, i+2+k, p, l)
			}
			*dst[k] = strings.TrimPrefix(l, p)
		}
		if lines[i+4] != "---" {
			t.Fatalf("section %s: no --- line", s.name)
		}
		j := i + 5
		var body []string
		for ; j < len(lines) && !strings.HasPrefix(lines[j], "EXIT_CODE: "); j++ {
			body = append(body, lines[j])
		}
		if j+1 >= len(lines) || lines[j+1] != "=== TSIM_SECTION_END:"+s.name+" ===" {
			t.Fatalf("section %s: bad end", s.name)
		}
		if len(body) == 0 || body[len(body)-1] != "" {
			t.Fatalf("section %s: no empty line before EXIT_CODE", s.name)
		}
		s.body = strings.Join(body[:len(body)-1], "\n")
		s.exit = strings.TrimPrefix(lines[j], "EXIT_CODE: ")
		secs = append(secs, s)
		i = j + 2
		if i < len(lines) && lines[i] == "" {
			i++
		}
	}
	if i >= len(lines) || lines[i] != "=== TSIM_FACTS_COLLECTION_COMPLETE ===" {
		t.Fatalf("no completion trailer at line %d", i+1)
	}
	return header, secs, lines[i+1:]
}

// TestCollectorRuns runs the collector under dash in this machine's current
// namespace (it only reads) and checks the framing, the fixed timestamps and
// the router name.
func TestCollectorRuns(t *testing.T) {
	testenv.NeedTools(t, "dash")
	dash, _ := exec.LookPath("dash")
	cmd := exec.Command(dash, collWrite(t))
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH=1767225600", "TSIM_ROUTER=unit-router")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("collector: %v\n%s", err, stderr.String())
	}
	header, secs, trailer := collSplit(t, string(out))
	if !collHas(header, "# Hostname: unit-router") || !collHas(header, "# Generated on: 2026-01-01 00:00:00") {
		t.Errorf("header = %q", header)
	}
	names := map[string]collSection{}
	for _, s := range secs {
		if s.timestamp != "2026-01-01 00:00:00" {
			t.Errorf("section %s timestamp %q, want the SOURCE_DATE_EPOCH time", s.name, s.timestamp)
		}
		names[s.name] = s
	}
	for _, n := range []string{"interfaces", "policy_rules", "rt_tables", "routing_table_main",
		"iptables_save", "ipset_save", "ip_forwarding", "sysctls", "kernel_version", "hostname"} {
		if _, ok := names[n]; !ok {
			t.Errorf("section %s missing", n)
		}
	}
	if s := names["hostname"]; s.body != "unit-router" || s.exit != "0" {
		t.Errorf("hostname section = %+v", s)
	}
	if s := names["interfaces"]; s.exit == "0" && !strings.Contains(s.body, " lo: ") {
		t.Errorf("interfaces section lacks lo:\n%s", s.body)
	}
	if !collHas(trailer, "HOSTNAME: unit-router") {
		t.Errorf("trailer = %q", trailer)
	}
	// What the reply and ECMP model reads: the multipath hash settings and
	// conntrack's tcp pick-up settings, where this kernel has them.
	for _, k := range []string{"net.ipv4.fib_multipath_hash_policy", "net.ipv4.fib_multipath_hash_fields",
		"net.ipv4.fib_multipath_hash_seed", "net.netfilter.nf_conntrack_tcp_loose", "net.netfilter.nf_conntrack_tcp_be_liberal"} {
		if _, err := os.Stat("/proc/sys/" + strings.ReplaceAll(k, ".", "/")); err != nil {
			continue
		}
		if s := names["sysctls"]; s.exit == "0" && !strings.Contains(s.body, k+" = ") {
			t.Errorf("sysctls section lacks %s:\n%s", k, s.body)
		}
	}
}

// TestCollectorMissingCommands runs the collector with an empty command
// path: every section must still appear, with EXIT_CODE 127.
func TestCollectorMissingCommands(t *testing.T) {
	testenv.NeedTools(t, "dash")
	dash, _ := exec.LookPath("dash")
	// Only the tools the framing itself needs; ip, iptables-save, ipset,
	// sysctl, uname, hostname are absent.
	bin := t.TempDir()
	for _, tool := range []string{"date", "mktemp", "rm", "sed", "cat", "awk", "sort", "tr", "id", "printenv"} {
		testenv.NeedTools(t, tool)
		p, _ := exec.LookPath(tool)
		if err := os.Symlink(p, filepath.Join(bin, tool)); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(dash, collWrite(t))
	cmd.Env = []string{"TSIM_PATH=" + bin, "TSIM_ROUTER=r1"}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("collector must not fail when tools are missing: %v", err)
	}
	_, secs, _ := collSplit(t, string(out))
	got := map[string]string{}
	for _, s := range secs {
		got[s.name] = s.exit
		if s.exit == "127" && !strings.HasPrefix(s.body, "ERROR: Command '") {
			t.Errorf("section %s: body %q", s.name, s.body)
		}
	}
	for _, n := range []string{"interfaces", "policy_rules", "routing_table_main", "iptables_save", "ipset_save", "sysctls", "kernel_version"} {
		if got[n] != "127" {
			t.Errorf("section %s exit %q, want 127", n, got[n])
		}
	}
	if got["hostname"] != "0" {
		t.Errorf("hostname (from TSIM_ROUTER) exit %q", got["hostname"])
	}
}

func collHas(list []string, s string) bool {
	for _, l := range list {
		if l == s {
			return true
		}
	}
	return false
}

// TestCollectorTables runs the collector inside a fresh network namespace
// (root only) holding a policy table named through TSIM_RT_TABLES, and
// checks that the table gets its routing_table_<id> section with the name in
// the title, and that a rule naming a table that does not exist gives none.
func TestCollectorTables(t *testing.T) {
	testenv.NeedRoot(t, "sudo go test ./internal/facts -run Collector")
	testenv.NeedTools(t, "ip")
	ns := "tsimcoll" + strconv.Itoa(os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	for _, args := range [][]string{
		{"link", "set", "lo", "up"},
		{"route", "add", "blackhole", "10.9.0.0/16", "table", "77"},
		{"route", "add", "unreachable", "default", "table", "77"},
		{"rule", "add", "pref", "100", "from", "10.9.0.0/16", "lookup", "77"},
		{"rule", "add", "pref", "110", "to", "10.8.0.0/16", "lookup", "78"},
	} {
		if out, err := exec.Command("ip", append([]string{"-n", ns}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v %s", args, err, out)
		}
	}
	rt := filepath.Join(t.TempDir(), "rt_tables")
	if err := os.WriteFile(rt, []byte("77\tquarantine\n78\tnever_made\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", ns, "sh", collWrite(t))
	cmd.Env = append(os.Environ(), "TSIM_RT_TABLES="+rt, "TSIM_ROUTER=nsr")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("collector: %v", err)
	}
	_, secs, _ := collSplit(t, string(out))
	got := map[string]collSection{}
	for _, s := range secs {
		got[s.name] = s
	}
	s, ok := got["routing_table_77"]
	if !ok {
		t.Fatalf("no routing_table_77 section; sections: %v", secs)
	}
	if s.title != "IP Routing Table quarantine (77)" || s.command != "ip route show table 77" || s.exit != "0" {
		t.Errorf("routing_table_77 = %+v", s)
	}
	if !strings.Contains(s.body, "blackhole 10.9.0.0/16") || !strings.Contains(s.body, "unreachable default") {
		t.Errorf("routing_table_77 body:\n%s", s.body)
	}
	if _, ok := got["routing_table_78"]; ok {
		t.Error("a table that only a rule names (and that does not exist) got a section")
	}
	if !strings.Contains(got["rt_tables"].body, "77\tquarantine") || !strings.Contains(got["rt_tables"].command, rt) {
		t.Errorf("rt_tables section = %+v", got["rt_tables"])
	}
	if !strings.Contains(got["policy_rules"].body, "lookup 77") && !strings.Contains(got["policy_rules"].body, "lookup quarantine") {
		t.Errorf("policy_rules:\n%s", got["policy_rules"].body)
	}
}

// TestCollectorFromStdin feeds the script to dash on stdin, as
// `tsim facts script | ssh router sudo sh` does: no command inside may eat
// the rest of the script.
func TestCollectorFromStdin(t *testing.T) {
	testenv.NeedTools(t, "dash")
	dash, _ := exec.LookPath("dash")
	cmd := exec.Command(dash)
	cmd.Stdin = strings.NewReader(CollectorScript())
	cmd.Env = append(os.Environ(), "TSIM_ROUTER=piped")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("collector on stdin: %v", err)
	}
	_, secs, trailer := collSplit(t, string(out))
	if len(secs) < 10 || !collHas(trailer, "HOSTNAME: piped") {
		t.Errorf("%d sections, trailer %q", len(secs), trailer)
	}
}
