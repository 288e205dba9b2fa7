package main

// End-to-end tests of the tsim binary as a user runs it: built once, run
// as subprocesses, exit codes and outputs asserted. The run tests need
// root (network namespaces); elsewhere they skip saying so.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tsim-dev/tsim/internal/pdfcheck"
	"github.com/tsim-dev/tsim/internal/testenv"
)

var tsimBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tsim-e2e-")
	if err != nil {
		panic(err)
	}
	tsimBin = filepath.Join(dir, "tsim")
	if out, err := exec.Command("go", "build", "-o", tsimBin, ".").CombinedOutput(); err != nil {
		os.Stderr.Write(out)
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func needRoot(t *testing.T) {
	t.Helper()
	testenv.NeedRoot(t, "sudo make test")
}

type result struct {
	stdout, stderr string
	code           int
}

func tsim(t *testing.T, dir string, args ...string) result {
	t.Helper()
	cmd := exec.Command(tsimBin, args...)
	cmd.Dir = dir
	return runCommand(t, cmd)
}

// labGone asserts nothing of lab id is left: no namespace, no registry entry.
func labGone(t *testing.T, id string) {
	t.Helper()
	if id == "" {
		return
	}
	out, _ := exec.Command("ip", "netns", "list").Output()
	if strings.Contains(string(out), id) {
		t.Errorf("namespaces of lab %s left behind:\n%s", id, out)
	}
	if _, err := os.Stat(filepath.Join("/run/tsim/labs", id+".json")); err == nil {
		t.Errorf("registry entry of lab %s left behind", id)
	}
}

type runDoc struct {
	Lab *struct {
		ID      string `json:"id"`
		Removed bool   `json:"removed"`
	} `json:"lab"`
	Reach []struct {
		Flow string `json:"flow"`
		E2E  struct {
			Verdict   string `json:"verdict"`
			BlockedBy *struct {
				Router, Chain string
				Index         int
			} `json:"blocked_by"`
		} `json:"e2e"`
	} `json:"reach"`
	Report *struct {
		PDF   string `json:"pdf"`
		Pages int    `json:"pages"`
	} `json:"report"`
}

func decodeRun(t *testing.T, s string) runDoc {
	t.Helper()
	var d runDoc
	if err := json.Unmarshal([]byte(s), &d); err != nil {
		t.Fatalf("run output is not a document: %v\n%s", err, s)
	}
	if d.Lab == nil || !d.Lab.Removed {
		t.Errorf("document does not say the lab was removed")
	}
	return d
}

func checkPDF(t *testing.T, path string, minPages int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil || !bytes.HasPrefix(b, []byte("%PDF-")) {
		t.Fatalf("%s is not a PDF: %v", path, err)
	}
	// pdfinfo comes with poppler-utils, which make test installs.
	out, err := exec.Command("pdfinfo", path).Output()
	if err != nil {
		t.Fatalf("pdfinfo %s: %v", path, err)
	}
	m := regexp.MustCompile(`Pages:\s+(\d+)`).FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("pdfinfo: no page count\n%s", out)
	}
	if n, _ := strconv.Atoi(m[1]); n < minPages {
		t.Errorf("%s has %d pages, want at least %d", path, n, minPages)
	}
	pdfcheck.Validate(t, path)
}

func TestRunSingleFlow(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	r := tsim(t, dir, "run", "-s", "10.1.10.5", "-d", "10.3.10.5", "-p", "https", "-o", "report.pdf", "--json", "--probe-timeout", "3s")
	if r.code != 0 {
		t.Fatalf("exit %d, want 0 (reachable)\n%s", r.code, r.stderr)
	}
	d := decodeRun(t, r.stdout)
	if len(d.Reach) != 1 || d.Reach[0].E2E.Verdict != "REACHABLE" {
		t.Fatalf("reach = %+v", d.Reach)
	}
	checkPDF(t, filepath.Join(dir, "report.pdf"), 2)
	labGone(t, d.Lab.ID)
}

func TestRunMultiService(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	// https and ssh pass hq-gw and dc-gw to dc-core's LAN; 10.3.20.10 is
	// behind dc-gw's FORWARD policy for https from HQ users.
	r := tsim(t, dir, "run", "-s", "10.1.20.5", "-d", "10.3.20.10", "-p", "https,5432/tcp", "-o", "out/r.pdf", "--json", "--probe-timeout", "3s")
	if r.code != 1 {
		t.Fatalf("exit %d, want 1 (one service blocked)\n%s", r.code, r.stderr)
	}
	d := decodeRun(t, r.stdout)
	if len(d.Reach) != 2 {
		t.Fatalf("%d reach entries, want 2", len(d.Reach))
	}
	got := map[string]string{}
	for _, x := range d.Reach {
		got[x.Flow] = x.E2E.Verdict
	}
	if got["f1"] != "UNREACHABLE" || got["f2"] != "REACHABLE" {
		t.Errorf("verdicts %v, want f1 UNREACHABLE (https) and f2 REACHABLE (5432)", got)
	}
	if b := d.Reach[0].E2E.BlockedBy; b == nil || b.Router != "dc-gw" || b.Chain != "FORWARD" {
		t.Errorf("https blocked_by = %+v, want dc-gw FORWARD", b)
	}
	checkPDF(t, filepath.Join(dir, "out", "r.pdf"), 3)
	labGone(t, d.Lab.ID)
}

func TestRunFlowsFileMixedExpectations(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	flows := "src,dst,spec,expect\n" +
		"10.1.10.5,10.3.10.5,https,allow\n" + // PASS
		"10.1.10.5,10.3.20.10,ssh,deny\n" + // PASS: dc-gw policy
		"10.1.20.5,10.3.20.10,https,allow\n" + // FAIL: dc-gw policy
		"10.2.10.5,10.3.10.5,https\n" // INFO
	if err := os.WriteFile(filepath.Join(dir, "flows.csv"), []byte(flows), 0o644); err != nil {
		t.Fatal(err)
	}
	r := tsim(t, dir, "run", "--flows", "flows.csv", "-o", "nightly.pdf", "--progress", "none", "--probe-timeout", "3s", "--junit", "junit.xml")
	if r.code != 1 {
		t.Fatalf("exit %d, want 1 (one expectation fails)\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	want := []string{
		`(?m)^PASS\s+flows\.csv:2  10\.1\.10\.5 → 10\.3\.10\.5 https  got allow$`,
		`(?m)^PASS\s+flows\.csv:3  10\.1\.10\.5 → 10\.3\.20\.10 ssh  got deny$`,
		`(?m)^FAIL\s+flows\.csv:4  10\.1\.20\.5 → 10\.3\.20\.10 https  https: got deny, want allow \(UNREACHABLE\) by dc-gw filter FORWARD policy$`,
		`(?m)^INFO\s+flows\.csv:5  10\.2\.10\.5 → 10\.3\.10\.5 https  https: got allow \(REACHABLE\)`,
		`(?m)^2 passed, 1 failed, 0 unknown, 1 without expectation; report nightly\.pdf \(\d+ pages\)$`,
	}
	for _, w := range want {
		if !regexp.MustCompile(w).MatchString(r.stdout) {
			t.Errorf("output lacks %s:\n%s", w, r.stdout)
		}
	}
	junit, err := os.ReadFile(filepath.Join(dir, "junit.xml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{`tests="4" failures="1" errors="0" skipped="1"`, `<testcase name="line 4: 10.1.20.5 → 10.3.20.10 https"`,
		`<failure message="https: got deny, want allow (UNREACHABLE) by dc-gw filter FORWARD policy" type="FAIL">`, `<property name="lab" value="`} {
		if !strings.Contains(string(junit), w) {
			t.Errorf("junit.xml lacks %s:\n%s", w, junit)
		}
	}
	validateJUnit(t, filepath.Join(dir, "junit.xml"))
	checkPDF(t, filepath.Join(dir, "nightly.pdf"), 9) // contents + 4 reports of summary and service page
}

// TestRunInterrupted sends SIGINT once the lab stands: exit 130 and
// nothing of the lab left.
func TestRunInterrupted(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	cmd := exec.Command(tsimBin, "run", "-s", "10.1.10.5", "-d", "10.3.10.5", "-p", "1-200/tcp", "-o", "r.pdf", "--progress", "json", "--json")
	cmd.Dir = dir
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	labRe := regexp.MustCompile(`lab ([a-z0-9]+): \d+ routers`)
	sc := bufio.NewScanner(stderr)
	var lab string
	for sc.Scan() {
		if m := labRe.FindStringSubmatch(sc.Text()); m != nil {
			lab = m[1]
			cmd.Process.Signal(syscall.SIGINT)
			break
		}
	}
	err = drainAndWait(t, cmd, sc, 60*time.Second)
	if lab == "" {
		t.Fatalf("never saw the lab come up (exit %v)", err)
	}
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 {
		t.Fatalf("exit %v, want 130", err)
	}
	labGone(t, lab)
	if _, err := os.Stat(filepath.Join(dir, "r.pdf")); err == nil {
		t.Error("interrupted run left a report behind")
	}
}

func TestRunTimeout(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	r := tsim(t, dir, "run", "-s", "10.1.10.5", "-d", "10.3.10.5", "-p", "1-100/tcp", "--timeout", "300ms", "-o", "r.pdf", "--progress", "json")
	if r.code != 3 {
		t.Fatalf("exit %d, want 3 on timeout\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "--timeout") {
		t.Errorf("stderr does not say timeout: %s", r.stderr)
	}
	if m := regexp.MustCompile(`lab ([a-z0-9]+): \d+ routers`).FindStringSubmatch(r.stderr); m != nil {
		labGone(t, m[1])
	}
	if _, err := os.Stat(filepath.Join(dir, "r.pdf")); err == nil {
		t.Error("timed-out run left a report behind")
	}
}

func TestPipelineStages(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	// The shell pipeline of DESIGN §2, stage by stage.
	sh := tsimBin + ` trace -s 10.1.10.5 -d 10.3.10.5 -p https,ssh | ` + tsimBin + ` hosts up | ` + tsimBin + ` reach --timeout 3s | ` +
		tsimBin + ` hosts down | ` + tsimBin + ` report -o out | ` + tsimBin + ` merge -o all.pdf`
	cmd := exec.Command("sh", "-c", sh)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("pipeline: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), `"documents": 1`) {
		t.Errorf("merge output: %s", out)
	}
	checkPDF(t, filepath.Join(dir, "all.pdf"), 3)
}

// TestRunSameSubnet: two hosts on one LAN talk without a router; the live
// answer is the probe between them, not UNKNOWN.
func TestRunSameSubnet(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	r := tsim(t, dir, "run", "-s", "10.2.10.5", "-d", "10.2.10.10", "-p", "https", "-o", "r.pdf", "--json", "--probe-timeout", "3s")
	if r.code != 0 {
		t.Fatalf("exit %d, want 0\n%s", r.code, r.stderr)
	}
	d := decodeRun(t, r.stdout)
	if len(d.Reach) != 1 || d.Reach[0].E2E.Verdict != "REACHABLE" {
		t.Fatalf("reach = %+v, want REACHABLE", d.Reach)
	}
	labGone(t, d.Lab.ID)
}

// drainAndWait reads the rest of sc and waits for cmd, killing it and
// failing after limit.
func drainAndWait(t *testing.T, cmd *exec.Cmd, sc *bufio.Scanner, limit time.Duration) error {
	t.Helper()
	go func() {
		for sc.Scan() {
		}
	}()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(limit):
		cmd.Process.Kill()
		t.Fatalf("%s did not stop within %v of SIGINT", cmd.Args[1], limit)
	}
	return nil
}

// TestTraceInterruptedDies: trace creates nothing, so it installs no signal
// handler (a start-up cost) and SIGINT ends a long batch at once, by the
// signal's default action.
func TestTraceInterruptedDies(t *testing.T) {
	flows := filepath.Join(t.TempDir(), "flows.csv")
	var b strings.Builder
	for i := 0; i < 500000; i++ {
		b.WriteString("10.1.10.5,10.1.50.10,https\n")
	}
	if err := os.WriteFile(flows, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(tsimBin, "trace", "--flows", flows, "--json")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	sc.Buffer(nil, 1<<20)
	if !sc.Scan() {
		t.Fatal("no first document")
	}
	cmd.Process.Signal(syscall.SIGINT)
	err = drainAndWait(t, cmd, sc, 10*time.Second)
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGINT {
		t.Fatalf("trace ended with %v, want killed by SIGINT", err)
	}
}

// validateJUnit validates a JUnit XML file against the schema the flowtest
// package's tests use (xmllint, Debian package libxml2-utils).
func validateJUnit(t *testing.T, path string) {
	t.Helper()
	testenv.NeedTools(t, "xmllint") // Debian package libxml2-utils
	xsd := filepath.Join("..", "..", "internal", "flowtest", "testdata", "junit.xsd")
	if out, err := exec.Command("xmllint", "--noout", "--schema", xsd, path).CombinedOutput(); err != nil {
		t.Errorf("%s does not validate against %s: %v\n%s", path, xsd, err, out)
	}
}

// TestHostsDownSummary: given a document, hosts down passes it on into a
// pipe and prints one line for a person (--text, as on a terminal).
func TestHostsDownSummary(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	up := exec.Command("sh", "-c", tsimBin+` trace -s 10.1.10.5 -d 10.1.50.10 -p https | `+tsimBin+` hosts up --scope path > lab.json`)
	up.Dir = dir
	if out, err := up.CombinedOutput(); err != nil {
		t.Fatalf("hosts up: %v\n%s", err, out)
	}
	var d runDoc
	b, err := os.ReadFile(filepath.Join(dir, "lab.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &d); err != nil || d.Lab == nil {
		t.Fatalf("lab.json: %v", err)
	}
	down := exec.Command(tsimBin, "hosts", "down", "--text")
	down.Dir = dir
	down.Stdin = bytes.NewReader(b)
	r := runCommand(t, down)
	if r.code != 0 || r.stdout != "removed lab "+d.Lab.ID+"\n" {
		t.Errorf("hosts down --text: exit %d, stdout %q, stderr %q; want one line naming lab %s", r.code, r.stdout, r.stderr, d.Lab.ID)
	}
	labGone(t, d.Lab.ID)
}
