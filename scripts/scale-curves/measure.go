package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tsim-dev/tsim/hosts"
	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/facts"
	"github.com/tsim-dev/tsim/internal/flowtest"
	"github.com/tsim-dev/tsim/trace"
)

// Record is one measured figure.
type Record struct {
	What       string             `json:"what"` // load, trace, trace-process, run, floor, lab
	Routers    int                `json:"routers"`
	Scope      string             `json:"scope,omitempty"` // run, floor, lab: "all" for a lab of every router (--scope all), else the flows' routers
	Flows      int                `json:"flows,omitempty"`
	LabRouters int                `json:"lab_routers,omitempty"`
	Ms         float64            `json:"ms,omitempty"`          // the figure's wall time
	PerFlowUs  float64            `json:"per_flow_us,omitempty"` // trace: µs per flow
	Per100kMs  float64            `json:"per_100k_ms,omitempty"` // trace: 100,000 traces
	RSSMB      float64            `json:"rss_mb,omitempty"`      // peak RSS of the process
	Stages     map[string]float64 `json:"stages,omitempty"`      // run: ms per stage; floor, lab: up, down
	Hosts      int                `json:"hosts,omitempty"`       // lab: endpoint host namespaces
	FDs        int                `json:"fds,omitempty"`         // lab: peak open descriptors of hosts up
	Neigh      string             `json:"neigh,omitempty"`       // run, lab: the kernel's ARP table (shared by every namespace) before → after
	Exit       int                `json:"exit,omitempty"`
	Load1      float64            `json:"load1"` // load average (1 min) when the figure was taken
	Load1After float64            `json:"load1_after,omitempty"`
	Time       string             `json:"time"`
	Tsim       string             `json:"tsim,omitempty"` // version of the binary timed
	Note       string             `json:"note,omitempty"`
}

func load1() float64 {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

func ints(s string) ([]int, error) {
	var out []int
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x == "" {
			continue
		}
		n, err := strconv.Atoi(x)
		if err != nil {
			return nil, fmt.Errorf("%q: not a number", x)
		}
		out = append(out, n)
	}
	return out, nil
}

type measurer struct {
	tsim, gen, work string
	out             *os.File
	seed            string
	probeTimeout    string
	version         string
	scope           string // "all": labs of every router (--scope all)
}

func (m *measurer) emit(r Record) {
	r.Time = time.Now().UTC().Format(time.RFC3339)
	r.Tsim = m.version
	if m.scope == hosts.ScopeAll && (r.What == "run" || r.What == "floor" || r.What == "lab") {
		r.Scope = hosts.ScopeAll
	}
	if r.Load1After == 0 {
		r.Load1After = load1()
	}
	b, _ := json.Marshal(r)
	m.out.Write(append(b, '\n'))
	fmt.Fprintf(os.Stderr, "%s\n", b)
}

func measure(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("measure", flag.ContinueOnError)
	tsim := fs.String("tsim", "tsim", "the tsim binary to time")
	gen := fs.String("gen", "", "the gen-network binary (go build ./scripts/gen-network)")
	routers := fs.String("routers", "10,50,200,500", "network sizes")
	flows := fs.String("flows", "100,1000,10000", "suite sizes for trace")
	labFlows := fs.String("lab-flows", "100,1000", "suite sizes for run --flows (lab to PDF)")
	labMaxRouters := fs.Int("lab-max-routers", 500, "largest network run --flows is measured on")
	work := fs.String("work", "", "scratch directory for networks, PDFs and documents")
	out := fs.String("o", "", "results file (JSON lines, appended)")
	seed := fs.String("seed", "1", "gen-network seed")
	only := fs.String("only", "load,trace,trace-process,run,floor", "figures to take (also: lab, hosts up and down as processes)")
	scope := fs.String("scope", "path", "labs of run, floor and lab: path (the routers the flows can touch) or all (every router, records with scope all)")
	probeTimeout := fs.String("probe-timeout", "2s", "run --probe-timeout")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *gen == "" || *work == "" || *out == "" {
		return fmt.Errorf("measure needs --gen, --work and -o")
	}
	if *scope != hosts.ScopePath && *scope != hosts.ScopeAll {
		return fmt.Errorf("--scope %q: want path or all", *scope)
	}
	ns, err := ints(*routers)
	if err != nil {
		return err
	}
	ms, err := ints(*flows)
	if err != nil {
		return err
	}
	lms, err := ints(*labFlows)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(*out, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	m := &measurer{tsim: *tsim, gen: *gen, work: *work, out: f, seed: *seed, probeTimeout: *probeTimeout, scope: *scope}
	if b, err := exec.Command(*tsim, "--json", "version").Output(); err == nil {
		var v struct{ Version string }
		if json.Unmarshal(b, &v) == nil {
			m.version = v.Version
		}
	}
	want := map[string]bool{}
	for _, w := range strings.Split(*only, ",") {
		want[w] = true
	}
	maxM := slices.Max(append(slices.Clone(ms), lms...))
	for _, n := range ns {
		dir := filepath.Join(*work, fmt.Sprintf("n%d", n))
		if err := m.generate(dir, n, maxM); err != nil {
			return err
		}
		fdir := filepath.Join(dir, "facts")
		if want["load"] {
			if err := m.load(ctx, n, fdir); err != nil {
				return err
			}
		}
		if want["trace"] {
			if err := m.trace(ctx, n, dir, ms); err != nil {
				return err
			}
		}
		for _, k := range ms {
			if want["trace-process"] {
				m.traceProcess(n, dir, k)
			}
		}
		if n > *labMaxRouters {
			continue
		}
		for _, k := range lms {
			if want["floor"] {
				if err := m.floor(ctx, n, dir, k); err != nil {
					return err
				}
			}
			if want["lab"] {
				if err := m.lab(ctx, n, dir, k); err != nil {
					return err
				}
			}
			if want["run"] {
				m.run(n, dir, k)
			}
		}
	}
	return nil
}

// generate writes the network with maxM flows and head-K files.
func (m *measurer) generate(dir string, n, maxM int) error {
	if _, err := os.Stat(filepath.Join(dir, fmt.Sprintf("flows-%d.csv", maxM))); err == nil {
		return nil
	}
	cmd := exec.Command(m.gen, "--routers", strconv.Itoa(n), "--flows", strconv.Itoa(maxM), "--seed", m.seed, "-o", dir)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("gen-network %d: %w", n, err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "flows.csv"))
	if err != nil {
		return err
	}
	lines := strings.SplitAfter(string(b), "\n")
	for _, k := range []int{100, 1000, 10000, maxM} {
		if k+1 > len(lines) {
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("flows-%d.csv", k)), []byte(strings.Join(lines[:k+1], "")), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func (m *measurer) load(ctx context.Context, n int, fdir string) error {
	var ds []time.Duration
	l := load1()
	for range 3 {
		t0 := time.Now()
		if _, err := facts.Load(ctx, fdir); err != nil {
			return err
		}
		ds = append(ds, time.Since(t0))
	}
	slices.Sort(ds)
	m.emit(Record{What: "load", Routers: n, Ms: ms(ds[1]), Load1: l, Note: "facts.Load in process, median of 3"})
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func readFlows(path string) ([]*doc.Flow, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	f, err := flowtest.Read(fh, path)
	if err != nil {
		return nil, err
	}
	return f.Flows(), nil
}

func (m *measurer) trace(ctx context.Context, n int, dir string, sizes []int) error {
	f, err := facts.Load(ctx, filepath.Join(dir, "facts"))
	if err != nil {
		return err
	}
	for _, k := range sizes {
		flows, err := readFlows(filepath.Join(dir, fmt.Sprintf("flows-%d.csv", k)))
		if err != nil {
			return err
		}
		l := load1()
		eng := trace.New(f) // fresh: chains compile on first use, as in one tsim trace
		t0 := time.Now()
		for _, fl := range flows {
			eng.Trace(ctx, fl)
		}
		first := time.Since(t0)
		t1 := time.Now()
		for i := range 100000 {
			eng.Trace(ctx, flows[i%len(flows)])
		}
		all := time.Since(t1)
		m.emit(Record{What: "trace", Routers: n, Flows: len(flows), Load1: l,
			PerFlowUs: float64(first.Nanoseconds()) / 1000 / float64(len(flows)), Per100kMs: ms(all),
			Note: "in process; per flow: first pass over the suite (chains compiled on first use); 100k: cycling through the suite"})
	}
	return nil
}

// timed runs a command and returns its wall time, peak RSS (MB) and exit code.
func timed(cmd *exec.Cmd) (time.Duration, float64, int) {
	t0 := time.Now()
	err := cmd.Run()
	d := time.Since(t0)
	code := 0
	if err != nil {
		code = -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
	}
	rss := 0.0
	if cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			rss = float64(ru.Maxrss) / 1024
		}
	}
	return d, rss, code
}

func (m *measurer) traceProcess(n int, dir string, k int) {
	l := load1()
	cmd := exec.Command(m.tsim, "--facts", filepath.Join(dir, "facts"), "trace", "--flows", filepath.Join(dir, fmt.Sprintf("flows-%d.csv", k)), "--format", "csv")
	d, rss, code := timed(cmd)
	m.emit(Record{What: "trace-process", Routers: n, Flows: k, Ms: ms(d), RSSMB: rss, Exit: code, Load1: l,
		Note: "tsim trace --flows FILE --format csv (load + trace + output)"})
}

type event struct {
	Time    time.Time `json:"time"`
	Stage   string    `json:"stage"`
	Message string    `json:"message"`
}

func (m *measurer) run(n int, dir string, k int) {
	l := load1()
	var stderr bytes.Buffer
	pdf := filepath.Join(dir, fmt.Sprintf("run-%d.pdf", k))
	args := []string{"--facts", filepath.Join(dir, "facts"), "run", "--flows", filepath.Join(dir, fmt.Sprintf("flows-%d.csv", k)),
		"--probe-timeout", m.probeTimeout, "--progress", "json", "-o", pdf}
	if m.scope == hosts.ScopeAll {
		args = append(args, "--scope", hosts.ScopeAll)
	}
	cmd := exec.Command(m.tsim, args...)
	cmd.Stderr = &stderr
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	n0 := neigh()
	d, rss, code := timed(cmd)
	n1 := neigh()
	stages := map[string]float64{}
	var evs []event
	sc := bufio.NewScanner(&stderr)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	labRouters := 0
	for sc.Scan() {
		var e event
		if json.Unmarshal(sc.Bytes(), &e) != nil || e.Stage == "" {
			continue
		}
		evs = append(evs, e)
		if e.Stage == "hosts-up" && strings.HasPrefix(e.Message, "lab ") {
			fmt.Sscanf(e.Message[strings.Index(e.Message, ":")+1:], "%d routers", &labRouters)
		}
	}
	// A stage ends with its last event (hosts-up: "lab …: N routers"; reach:
	// "probes done"; merge: "N pages"; hosts-down: "lab removed") and begins
	// where the stage before it ended (the first at its first event).
	var prevEnd time.Time
	for i, e := range evs {
		if i+1 < len(evs) && evs[i+1].Stage == e.Stage {
			continue
		}
		start := prevEnd
		if start.IsZero() {
			start = evs[0].Time
		}
		stages[e.Stage] += ms(e.Time.Sub(start))
		prevEnd = e.Time
	}
	summary := ""
	for _, line := range strings.Split(stdout.String(), "\n") {
		if strings.Contains(line, "passed,") {
			summary = strings.TrimSpace(line)
		}
	}
	m.emit(Record{What: "run", Routers: n, Flows: k, LabRouters: labRouters, Ms: ms(d), RSSMB: rss, Exit: code,
		Stages: stages, Load1: l, Note: summary, Neigh: n0 + " → " + n1})
	os.Remove(pdf)
}

// section returns the body of a raw facts section.
func section(text, name string) string {
	i := strings.Index(text, "=== TSIM_SECTION_START:"+name+" ===")
	if i < 0 {
		return ""
	}
	rest := text[i:]
	j := strings.Index(rest, "\n---\n")
	k := strings.Index(rest, "\nEXIT_CODE:")
	if j < 0 || k < j {
		return ""
	}
	return rest[j+5 : k]
}

// floor builds the routers of the lab run --flows would build, with plain
// commands, and removes them: the kernel's floor for the same objects.
func (m *measurer) floor(ctx context.Context, n int, dir string, k int) error {
	f, d, err := tracedDoc(ctx, dir, k)
	if err != nil {
		return err
	}
	scope := ""
	if m.scope == hosts.ScopeAll {
		scope = hosts.ScopeAll
	}
	rs, err := hosts.Select(f, d, scope)
	if err != nil {
		return err
	}
	l := load1()
	prefix := fmt.Sprintf("tsfl%d-", os.Getpid())
	fab := prefix + "fab"
	var created []string
	defer func() {
		for _, ns := range created {
			exec.Command("ip", "netns", "del", ns).Run()
		}
	}()
	run := func(stdin string, name string, args ...string) error {
		cmd := exec.Command(name, args...)
		cmd.Stdin = strings.NewReader(stdin)
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, firstLine(string(b)))
		}
		return nil
	}
	t0 := time.Now()
	names := []string{fab}
	for i := range rs {
		names = append(names, fmt.Sprintf("%s%d", prefix, i))
	}
	for _, ns := range names {
		if err := run("", "ip", "netns", "add", ns); err != nil {
			return err
		}
		created = append(created, ns)
	}
	// bridges: one per subnet; veths: one per interface.
	bridges := map[string]string{}
	var fb strings.Builder
	type rtrWork struct {
		ns, batch, ipt, ipset string
	}
	var works []rtrWork
	for i, r := range rs {
		ns := names[i+1]
		raw, _ := os.ReadFile(filepath.Join(dir, "facts", r.Name+"_facts.txt"))
		var rb strings.Builder
		for j, ifc := range r.Interfaces {
			if ifc.Name == "lo" || len(ifc.Addrs) == 0 {
				continue
			}
			sub := facts.ConnectedPrefix(ifc.Addrs[0]).String()
			br, ok := bridges[sub]
			if !ok {
				br = fmt.Sprintf("b%d", len(bridges))
				bridges[sub] = br
				fmt.Fprintf(&fb, "link add %s type bridge\nlink set %s up\n", br, br)
			}
			peer := fmt.Sprintf("f%d_%d", i, j)
			fmt.Fprintf(&fb, "link add %s type veth peer name %s netns %s\nlink set %s master %s up\n", peer, ifc.Name, ns, peer, br)
			for _, a := range ifc.Addrs {
				fmt.Fprintf(&rb, "addr add %s dev %s\n", a.Prefix, ifc.Name)
			}
			fmt.Fprintf(&rb, "link set %s up\n", ifc.Name)
		}
		for _, t := range r.Tables {
			for _, rt := range t.Routes {
				if rt.Proto == "kernel" || t.ID == 255 {
					continue
				}
				// "table N" belongs before any "nexthop".
				tok := strings.Fields(rt.Text)
				at := slices.Index(tok, "nexthop")
				if at < 0 {
					at = len(tok)
				}
				tok = slices.Insert(tok, at, "table", strconv.Itoa(t.ID))
				fmt.Fprintf(&rb, "route replace %s\n", strings.Join(tok, " "))
			}
		}
		works = append(works, rtrWork{ns: ns, batch: rb.String(), ipt: section(string(raw), "iptables_save"), ipset: section(string(raw), "ipset_save")})
	}
	if err := run(fb.String(), "ip", "-n", fab, "-batch", "-"); err != nil {
		return err
	}
	// Routers in parallel, 8 at once (as tsim's pool).
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	var mu sync.Mutex
	var firstErr error
	for _, w := range works {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			steps := []func() error{
				func() error {
					return run("", "ip", "netns", "exec", w.ns, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
				},
				func() error { return run(w.batch, "ip", "-n", w.ns, "-force", "-batch", "-") },
				func() error {
					if strings.TrimSpace(w.ipset) == "" {
						return nil
					}
					return run(w.ipset, "ip", "netns", "exec", w.ns, "ipset", "-exist", "restore")
				},
				func() error { return run(w.ipt, "ip", "netns", "exec", w.ns, "iptables-restore") },
			}
			for _, s := range steps {
				if err := s(); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	up := time.Since(t0)
	t1 := time.Now()
	for _, ns := range created {
		exec.Command("ip", "netns", "del", ns).Run()
	}
	created = nil
	down := time.Since(t1)
	note := "plain ip netns/ip -batch/ipset restore/iptables-restore, 8 routers at once; no endpoint hosts, no policy rules"
	if firstErr != nil {
		note += "; first refusal: " + firstLine(firstErr.Error())
	}
	m.emit(Record{What: "floor", Routers: n, Flows: k, LabRouters: len(rs), Ms: ms(up + down),
		Stages: map[string]float64{"up": ms(up), "down": ms(down)}, Load1: l, Note: note})
	return nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// neigh reads the kernel's ARP table statistics: entries (one table for
// every namespace of the machine, bounded by gc_thresh3 of the host's
// namespace) and table_fulls (summed over CPUs: times a new entry was
// refused because the table was full).
func neigh() string {
	b, err := os.ReadFile("/proc/net/stat/arp_cache")
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) < 2 {
		return ""
	}
	head := strings.Fields(lines[0])
	col := slices.Index(head, "table_fulls")
	var entries, fulls uint64
	for i, l := range lines[1:] {
		f := strings.Fields(l)
		if i == 0 && len(f) > 0 {
			entries, _ = strconv.ParseUint(f[0], 16, 64)
		}
		if col >= 0 && col < len(f) {
			v, _ := strconv.ParseUint(f[col], 16, 64)
			fulls += v
		}
	}
	return fmt.Sprintf("%d entries, %d table_fulls", entries, fulls)
}

// lab times `tsim hosts up` and `tsim hosts down` as processes, for the
// document of the first k flows traced (what run --flows builds its lab
// from): wall, peak RSS and peak open descriptors of hosts up.
func (m *measurer) lab(ctx context.Context, n int, dir string, k int) error {
	fdir := filepath.Join(dir, "facts")
	_, d, err := tracedDoc(ctx, dir, k)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := doc.Write(&buf, d); err != nil {
		return err
	}
	args := []string{"--facts", fdir, "hosts", "up"}
	if m.scope == hosts.ScopeAll {
		args = append(args, "--scope", hosts.ScopeAll)
	}
	l := load1()
	n0 := neigh()
	up := exec.Command(m.tsim, args...)
	up.Stdin = &buf
	var labJSON, upErr bytes.Buffer
	up.Stdout, up.Stderr = &labJSON, &upErr
	dUp, rss, fds, code := timedFDs(up)
	rec := Record{What: "lab", Routers: n, Flows: k, RSSMB: rss, FDs: fds, Exit: code, Load1: l,
		Note: "tsim hosts up < document of the flows traced; tsim hosts down < its output"}
	if code != 0 {
		rec.Ms = ms(dUp)
		rec.Note += "; hosts up failed: " + firstLine(upErr.String())
		m.emit(rec)
		return nil
	}
	var out struct {
		Lab struct {
			Routers []struct {
				Refused []json.RawMessage `json:"refused"`
			} `json:"routers"`
			Hosts []struct {
				Netns string `json:"netns"`
			} `json:"hosts"`
		} `json:"lab"`
	}
	if err := json.Unmarshal(labJSON.Bytes(), &out); err != nil {
		return fmt.Errorf("hosts up output: %w", err)
	}
	refused := 0
	for _, r := range out.Lab.Routers {
		refused += len(r.Refused)
	}
	hostNS := map[string]bool{}
	for _, h := range out.Lab.Hosts {
		hostNS[h.Netns] = true
	}
	down := exec.Command(m.tsim, "hosts", "down")
	down.Stdin = bytes.NewReader(labJSON.Bytes())
	var downErr bytes.Buffer
	down.Stderr = &downErr
	dDown, _, dcode := timed(down)
	rec.LabRouters, rec.Hosts = len(out.Lab.Routers), len(hostNS)
	rec.Ms = ms(dUp + dDown)
	rec.Stages = map[string]float64{"up": ms(dUp), "down": ms(dDown)}
	rec.Neigh = n0 + " → " + neigh()
	rec.Note += fmt.Sprintf("; %d lines refused by the kernel", refused)
	if dcode != 0 {
		rec.Exit = dcode
		rec.Note += "; hosts down failed: " + firstLine(downErr.String())
	}
	m.emit(rec)
	return nil
}

// timedFDs is timed, also sampling the process's open descriptors.
func timedFDs(cmd *exec.Cmd) (time.Duration, float64, int, int) {
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, 0, -1
	}
	done := make(chan struct{})
	peak := make(chan int, 1)
	go func() {
		p := 0
		dir := fmt.Sprintf("/proc/%d/fd", cmd.Process.Pid)
		for {
			if ents, err := os.ReadDir(dir); err == nil {
				p = max(p, len(ents))
			}
			select {
			case <-done:
				peak <- p
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	err := cmd.Wait()
	d := time.Since(t0)
	close(done)
	code := 0
	if err != nil {
		code = -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
	}
	rss := 0.0
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		rss = float64(ru.Maxrss) / 1024
	}
	return d, rss, <-peak, code
}

// tracedDoc loads the facts and the suite of k flows of a generated
// network and traces them: the document run --flows builds its lab from.
func tracedDoc(ctx context.Context, dir string, k int) (*facts.Facts, *doc.Document, error) {
	f, err := facts.Load(ctx, filepath.Join(dir, "facts"))
	if err != nil {
		return nil, nil, err
	}
	flows, err := readFlows(filepath.Join(dir, fmt.Sprintf("flows-%d.csv", k)))
	if err != nil {
		return nil, nil, err
	}
	d := doc.New()
	d.Flows = flows
	eng := trace.New(f)
	for _, fl := range flows {
		d.Trace = append(d.Trace, eng.Trace(ctx, fl))
	}
	return f, d, nil
}
