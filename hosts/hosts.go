// Package hosts owns labs (DESIGN §6): isolated copies of the routers of a
// facts set rebuilt as Linux network namespaces — interfaces, addresses,
// policy rules, every routing table, ipsets and iptables — joined by one
// bridge per L2 segment (of two or more ports) in a private fabric namespace, plus endpoint host
// namespaces for each flow, and the registry under /run/tsim/labs that lets
// `hosts down` remove exactly what a lab created. It never configures the
// host's root namespace and deletes nothing its registry does not list. It
// does not parse facts, trace flows or probe; it knows nothing of the CLI.
package hosts

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/facts"
	"github.com/tsim-dev/tsim/internal/netx"
	"github.com/tsim-dev/tsim/internal/pool"
	"github.com/tsim-dev/tsim/internal/tsimerr"
)

// Scopes of a lab.
const (
	ScopeAll  = "all"
	ScopePath = "path"
)

// Options tune Up, Down and List.
type Options struct {
	// Scope is ScopePath (routers the document's flows can touch: request,
	// reply and every ECMP branch, see pathRouters) or ScopeAll (every
	// router of the facts). "" is ScopePath, or ScopeAll when the document
	// has no trace or its flows touch no router.
	Scope string
	// Strict turns any kernel refusal into an Env error (exit 3), after
	// the lab is removed again.
	Strict bool
	// RegistryDir holds lab records; default DefaultRegistryDir.
	RegistryDir string
	// Pool is the hybrid executor whose I/O slots the router and host
	// builds run on (shared with the other stages of a run); nil: a pool
	// of Workers slots just for this call.
	Pool *pool.Pool
	// Workers bounds how many routers are built at once without a Pool;
	// default 8 (the
	// work is mostly waiting on the kernel, not CPU).
	Workers int
	// OwnerPID is the process whose death makes the lab stale; default
	// this process. A `hosts up` command that exits and leaves the lab
	// standing should pass its parent (the shell or script owning the
	// pipeline).
	OwnerPID int
	// HashSeed pins net.ipv4.fib_multipath_hash_seed on every router
	// whose facts pin none (0: DefaultHashSeed). Recorded in
	// .lab.routers[].
	HashSeed uint32
	// Label is recorded with the lab and shown by List (e.g. the serve job
	// a lab belongs to), so a lab left by a crash can be matched.
	Label string
	// Log receives progress and warnings (zero value: silent).
	Log zerolog.Logger

	onID func(id string) // tests: learn each reserved lab id
}

func (o *Options) dir() string {
	if o.RegistryDir == "" {
		return DefaultRegistryDir
	}
	return o.RegistryDir
}

// ErrNoLab is returned by Down for an id with no registry entry.
var ErrNoLab = errors.New("no such lab")

// LabInfo is one lab as `hosts ls` shows it.
type LabInfo struct {
	ID       string    `json:"id"`
	OwnerPID int       `json:"owner_pid"`
	Created  time.Time `json:"created"`
	Routers  []string  `json:"routers"`
	Hosts    []string  `json:"hosts"`
	Fabric   string    `json:"fabric,omitempty"`
	Complete bool      `json:"complete"`
	Stale    bool      `json:"stale"`
	Facts    string    `json:"facts,omitempty"`
	Digest   string    `json:"facts_digest,omitempty"`
	Label    string    `json:"label,omitempty"`
}

func newID() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 6)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// Up builds a lab for f and the flows/trace of d, fills d.Lab and returns
// it. On any error (including ctx cancellation) everything created so far
// is removed before returning. Kernel refusals are recorded per router and
// logged; with opts.Strict they make Up fail with an Env error.
func Up(ctx context.Context, f *facts.Facts, d *doc.Document, opts Options) (lab *doc.Lab, err error) {
	if f == nil || len(f.Routers) == 0 {
		return nil, tsimerr.Inputf("hosts up: the facts have no routers")
	}
	if d == nil {
		d = doc.New()
	}
	if err := netx.Prepare(); err != nil {
		return nil, err
	}
	if _, err := checkTools(); err != nil {
		return nil, err
	}
	if reaped, err := DownStale(ctx, opts); err != nil {
		opts.Log.Warn().Err(err).Msg("reaping stale labs")
	} else if len(reaped) > 0 {
		opts.Log.Info().Strs("labs", reaped).Msg("removed stale labs")
	}
	routers, err := selectRouters(f, d, opts.Scope)
	if err != nil {
		return nil, err
	}
	owner := opts.OwnerPID
	if owner == 0 {
		owner = os.Getpid()
	}
	start, _ := netx.ProcStart(owner)
	reg, err := newRegistry(opts.dir(), Record{OwnerPID: owner, OwnerStart: start, CreatorPID: os.Getpid(), Label: opts.Label,
		Created: time.Now().UTC(), Facts: f.Source, Digest: f.Digest, Routers: []string{}, Hosts: []string{}}, newID)
	if err != nil {
		return nil, tsimerr.Env(err)
	}
	if opts.onID != nil {
		opts.onID(reg.rec.ID)
	}
	b := &labBuild{opts: &opts, reg: reg, f: f, d: d}
	defer func() {
		b.closeHandles()
		if err != nil {
			rec := reg.snapshot()
			if terr := teardown(&rec); terr != nil {
				opts.Log.Error().Err(terr).Str("lab", rec.ID).Msg("cleanup after failed hosts up")
				reg.release() // keep the record so down --stale can finish
			} else {
				reg.remove()
			}
			lab = nil
		} else {
			reg.release()
		}
	}()
	lab, err = b.build(ctx, routers)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("hosts up interrupted: %w", ctx.Err())
		}
		return nil, err
	}
	n := 0
	for _, r := range lab.Routers {
		for _, x := range r.Refused {
			n++
			opts.Log.Warn().Str("router", r.Name).Str("what", x.What).Str("line", x.Line).Msg(x.Error)
		}
	}
	if n > 0 && opts.Strict {
		return nil, tsimerr.Envf("hosts up --strict: the kernel refused %d line(s) of the facts (first: %s)", n, firstRefusal(lab))
	}
	d.Lab = lab
	return lab, nil
}

func firstRefusal(l *doc.Lab) string {
	for _, r := range l.Routers {
		for _, x := range r.Refused {
			return fmt.Sprintf("%s %s %s: %s", r.Name, x.What, x.Line, x.Error)
		}
	}
	return ""
}

// checkTools finds the userland tools run inside namespaces.
func checkTools() ([]string, error) {
	var missing []string
	for _, t := range []string{"iptables-restore", "ipset"} {
		if _, err := exec.LookPath(t); err != nil {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return missing, tsimerr.Envf("hosts up needs %s (Debian: apt-get install iptables ipset)", strings.Join(missing, " and "))
	}
	return nil, nil
}

func selectRouters(f *facts.Facts, d *doc.Document, scope string) ([]*facts.Router, error) {
	explicit := scope != ""
	switch scope {
	case "":
		if len(d.Trace) == 0 {
			return f.Routers, nil
		}
		scope = ScopePath
	case ScopeAll:
		return f.Routers, nil
	}
	if scope != ScopePath {
		return nil, tsimerr.Inputf("hosts up: unknown scope %q (want all or path)", scope)
	}
	if len(d.Trace) == 0 {
		return nil, tsimerr.Input(doc.Need("trace", "hosts up --scope path"))
	}
	on := pathRouters(f, d)
	var out []*facts.Router
	for _, r := range f.Routers {
		if on[r.Name] {
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		if !explicit {
			return f.Routers, nil // nothing to go by: every router, as before
		}
		return nil, tsimerr.Inputf("hosts up --scope path: the trace crosses no router of the facts")
	}
	return out, nil
}

// labBuild is one Up in progress.
//
// It holds a file descriptor open only while it works in a namespace: the
// fabric's for the whole build, a router's or a host's while a worker
// builds it (openNS, then close). A lab of every router of a large network
// (500 routers, 600 namespaces) would otherwise keep a namespace handle
// and its netlink sockets open per namespace and run out of descriptors
// under the common RLIMIT_NOFILE of 1024 (as it did: 4 per namespace).
type labBuild struct {
	opts *Options
	reg  *registry
	f    *facts.Facts
	d    *doc.Document

	mu      sync.Mutex
	handles []netns.NsHandle
	nl      []*netlink.Handle
}

func (b *labBuild) keep(h netns.NsHandle, nl ...*netlink.Handle) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if h.IsOpen() {
		b.handles = append(b.handles, h)
	}
	b.nl = append(b.nl, nl...)
}

func (b *labBuild) closeHandles() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, h := range b.nl {
		if h != nil {
			h.Close()
		}
	}
	for _, h := range b.handles {
		h.Close()
	}
	b.nl, b.handles = nil, nil
}

// nsInit is what every lab namespace gets while it is created: IPv6 off
// for the interfaces to come, and for routers ip_forward=1. Both writes
// spin on the kernel's rtnl lock, so they happen here, in the sequential
// creation phase, and not while other builders hold rtnl.
func nsInit(router bool) func() error {
	return func() error {
		noIPv6()
		if router {
			return netx.SetSysctl("net.ipv4.ip_forward", "1")
		}
		return nil
	}
}

// createNS creates a namespace (already recorded) and closes its handle:
// the namespace lives on at its bind mount, and the worker that builds it
// opens it again (openNS).
func (b *labBuild) createNS(name string, init func() error) error {
	h, err := netx.Create(name, init)
	if h.IsOpen() {
		h.Close()
	}
	if err != nil {
		return tsimerr.Envf("create namespace %s: %w", name, err)
	}
	return nil
}

// openNS opens a lab namespace and a route netlink handle in it; the
// caller closes both (nsBuild.close). Only NETLINK_ROUTE: the handle's
// default also opens xfrm and netfilter sockets that a lab never uses.
func openNS(name string) (nsBuild, error) {
	h, err := netns.GetFromPath(netx.Path(name))
	if err != nil {
		return nsBuild{}, tsimerr.Envf("open namespace %s: %w", name, err)
	}
	nh, err := netlink.NewHandleAt(h, unix.NETLINK_ROUTE)
	if err != nil {
		h.Close()
		return nsBuild{}, tsimerr.Envf("netlink in %s: %w", name, err)
	}
	return nsBuild{h: h, nl: nh}, nil
}

// nsBuild is one namespace of the plan, open.
type nsBuild struct {
	h  netns.NsHandle
	nl *netlink.Handle
}

func (n nsBuild) close() {
	if n.nl != nil {
		n.nl.Close()
	}
	if n.h.IsOpen() {
		n.h.Close()
	}
}

func (b *labBuild) build(ctx context.Context, routers []*facts.Router) (*doc.Lab, error) {
	rec := b.reg.snapshot()
	p, err := buildPlan(rec.ID, routers)
	if err != nil {
		return nil, tsimerr.Input(err)
	}
	hostPlans, warns := placeHosts(p, b.f, b.d)
	for _, w := range warns {
		b.opts.Log.Warn().Msg(w)
	}
	p.hosts = hostPlans
	p.markLone()

	// Record everything before creating anything (one write): a crash at
	// any point leaves a record listing at least what exists.
	items := []Item{{Kind: itemNetns, Name: p.fabric}}
	for _, s := range p.segments {
		if !s.lone {
			items = append(items, Item{Kind: itemLink, Netns: p.fabric, Name: s.bridge})
		}
	}
	for _, rp := range p.routers {
		items = append(items, Item{Kind: itemNetns, Name: rp.ns})
		for _, ip := range rp.ifaces {
			items = append(items, Item{Kind: itemLink, Netns: p.fabric, Name: ip.fabric}, Item{Kind: itemLink, Netns: rp.ns, Name: ip.ifc.Name})
		}
	}
	for _, hp := range p.hosts {
		items = append(items, Item{Kind: itemNetns, Name: hp.ns},
			Item{Kind: itemLink, Netns: p.fabric, Name: hp.fabric}, Item{Kind: itemLink, Netns: hp.ns, Name: "eth0"})
	}
	if err := b.reg.update(func(r *Record) {
		r.Fabric = p.fabric
		for _, rp := range p.routers {
			r.Routers = append(r.Routers, rp.r.Name)
		}
		for _, h := range p.hosts {
			r.Hosts = append(r.Hosts, h.name)
		}
		r.Items = append(r.Items, items...)
	}); err != nil {
		return nil, tsimerr.Env(err)
	}

	t0 := time.Now()
	defer func() { b.opts.Log.Debug().Dur("took", time.Since(t0)).Msg("lab built") }()

	// Phase 1, sequential: every namespace.
	if err := b.phaseNS(ctx, p.fabric, nsInit(false)); err != nil {
		return nil, err
	}
	fab, err := openNS(p.fabric)
	if err != nil {
		return nil, err
	}
	b.keep(fab.h, fab.nl)
	for _, rp := range p.routers {
		if err := b.phaseNS(ctx, rp.ns, nsInit(true)); err != nil {
			return nil, err
		}
	}
	for _, hp := range p.hosts {
		if err := b.phaseNS(ctx, hp.ns, nsInit(false)); err != nil {
			return nil, err
		}
	}
	b.opts.Log.Debug().Dur("at", time.Since(t0)).Msg("namespaces ready")

	// Phase 2: the fabric's bridges.
	bridges := map[string]int{}
	for _, s := range p.segments {
		if s.lone {
			continue // its one fabric end stays on no bridge
		}
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: s.bridge, Flags: net.FlagUp}}
		if err := fab.nl.LinkAdd(br); err != nil {
			return nil, tsimerr.Envf("create bridge %s for %s: %w", s.bridge, strings.Join(s.subnet, " "), err)
		}
		bridges[s.bridge] = br.Attrs().Index
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b.opts.Log.Debug().Dur("at", time.Since(t0)).Msg("fabric ready")

	// Phase 3, parallel: routers.
	lab := &doc.Lab{ID: rec.ID, Fabric: p.fabric, Routers: make([]*doc.LabRouter, len(p.routers)), Hosts: []*doc.LabHost{}}
	builds := make([]*routerBuild, len(p.routers))
	workers := b.opts.Workers
	if workers <= 0 {
		workers = max(8, 2*runtime.NumCPU())
	}
	ex := b.opts.Pool
	if ex == nil {
		ex = pool.New(workers, 0)
	}
	g, _ := ex.Group(ctx)
	for i, rp := range p.routers {
		g.GoIO(func(gctx context.Context) error {
			if err := gctx.Err(); err != nil {
				return err
			}
			fs, err := netx.OpenSocket(fab.h)
			if err != nil {
				return tsimerr.Envf("netlink in %s: %w", p.fabric, err)
			}
			defer fs.Close()
			rn, err := openNS(rp.ns)
			if err != nil {
				return err
			}
			defer rn.close()
			rb := &routerBuild{rp: rp, idx: i, ns: rn.h, rh: rn.nl, fs: fs, bridges: bridges, log: b.opts.Log,
				seed: HashSeed(rp.r, *b.opts)}
			builds[i] = rb
			err = rb.configure(gctx)
			rb.ns, rb.rh = netns.None(), nil // closed when this worker returns
			if err != nil {
				return err
			}
			lab.Routers[i] = &doc.LabRouter{Name: rp.r.Name, Netns: rp.ns, Refused: rb.refused, HashSeed: rb.seeded}
			if lab.Routers[i].Refused == nil {
				lab.Routers[i].Refused = []*doc.Refusal{}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	b.opts.Log.Debug().Dur("at", time.Since(t0)).Msg("routers ready")

	// Phase 4, parallel: endpoint hosts (after the routers: internet hosts
	// ask their gateway's kernel where the destination goes).
	rbByName := map[string]*routerBuild{}
	for _, rb := range builds {
		rbByName[rb.rp.r.Name] = rb
	}
	g, _ = ex.Group(ctx)
	hostsOut := make([][]*doc.LabHost, len(p.hosts))
	for i, hp := range p.hosts {
		g.GoIO(func(gctx context.Context) error {
			if err := gctx.Err(); err != nil {
				return err
			}
			if hp.internet {
				if err := resolveInternet(hp, rbByName[hp.router]); err != nil {
					b.opts.Log.Warn().Err(err).Str("host", hp.name).Msg("internet host")
					return nil
				}
			}
			hn, err := openNS(hp.ns)
			if err != nil {
				return err
			}
			defer hn.close()
			if err := buildHost(hp, hostIndex(i), hn, fab.h, bridges); err != nil {
				return err
			}
			ips := []netip.Addr{hp.ip}
			if hp.internet {
				ips = hp.dsts
			}
			for _, ip := range ips {
				hostsOut[i] = append(hostsOut[i], &doc.LabHost{Name: hp.name, Netns: hp.ns, IP: ip.String(), Router: hp.router, Iface: hp.iface})
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for _, hs := range hostsOut {
		lab.Hosts = append(lab.Hosts, hs...)
	}
	names := []string{p.fabric}
	for _, rp := range p.routers {
		names = append(names, rp.ns)
	}
	for _, hp := range p.hosts {
		names = append(names, hp.ns)
	}
	if err := waitReady(ctx, names, 3*time.Second); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		b.opts.Log.Warn().Err(err).Msg("lab links")
	}
	b.opts.Log.Debug().Dur("at", time.Since(t0)).Msg("links ready")
	if err := b.reg.update(func(r *Record) { r.Complete = true }); err != nil {
		return nil, tsimerr.Env(err)
	}
	return lab, nil
}

// waitReady waits until the kernel has finished bringing every link up:
// a link with carrier becomes operationally up (and a bridge port starts
// forwarding, and its queueing discipline is attached) only when the
// kernel's link-watch worker has run, asynchronously and later on a busy
// machine. Packets sent before that are dropped, so a probe right after
// `hosts up` would see a lab that is not there yet. Asking for one link
// (RTM_GETLINK, not a dump) makes the kernel run its pending link-watch
// work at once; polling covers kernels that do not.
func waitReady(ctx context.Context, namespaces []string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	pending := namespaces
	wait := time.Millisecond
	for {
		var still []string
		var last string
		for _, name := range pending {
			if busy, err := linksComing(name); err != nil {
				return err
			} else if busy != "" {
				still, last = append(still, name), busy
			}
		}
		if len(still) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d namespaces still have links coming up (e.g. %s) after %v", len(still), last, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 20*time.Millisecond)
		pending = still
	}
}

// linksComing names a link of the namespace that has carrier but is not
// operationally up yet ("" when there is none). The namespace is opened
// for the question only (see labBuild).
func linksComing(name string) (string, error) {
	n, err := openNS(name)
	if err != nil {
		return "", err
	}
	defer n.close()
	links, err := n.nl.LinkList()
	if err != nil {
		return "", err
	}
	for _, l := range links {
		a := l.Attrs()
		if a.Flags&net.FlagUp == 0 || a.Flags&net.FlagLoopback != 0 || a.RawFlags&unix.IFF_LOWER_UP == 0 {
			continue // down by design, or no carrier (its peer is down)
		}
		if a.OperState == netlink.OperUp {
			continue
		}
		// UNKNOWN too: link-watch has not run for it yet.
		if l2, err := n.nl.LinkByIndex(a.Index); err == nil && l2.Attrs().OperState == netlink.OperUp {
			continue
		}
		return a.Name, nil
	}
	return "", nil
}

func (b *labBuild) phaseNS(ctx context.Context, name string, init func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return b.createNS(name, init)
}

// resolveInternet asks the gateway router's kernel how it forwards the
// first destination, so the internet host owns the next hop it uses.
func resolveInternet(hp *hostPlan, rb *routerBuild) error {
	if rb == nil {
		return fmt.Errorf("router %s is not in the lab", hp.router)
	}
	dst := net.IP(hp.dsts[0].AsSlice())
	opts := &netlink.RouteGetOptions{}
	if hp.inIface != "" && hp.srcIP.IsValid() {
		opts.Iif = hp.inIface
		opts.SrcAddr = net.IP(hp.srcIP.AsSlice())
	}
	rn, err := openNS(rb.rp.ns)
	if err != nil {
		return err
	}
	defer rn.close()
	rs, err := rn.nl.RouteGetWithOptions(dst, opts)
	if err != nil || len(rs) == 0 {
		rs, err = rn.nl.RouteGet(dst)
	}
	if err != nil || len(rs) == 0 {
		return fmt.Errorf("%s has no route to %s: %v", hp.router, hp.dsts[0], err)
	}
	var gw netip.Addr
	if a, ok := netip.AddrFromSlice(rs[0].Gw); ok {
		gw = a.Unmap()
	}
	ifc := rb.rp.r.Interface(hp.iface)
	for _, d := range hp.dsts {
		hp.addrs = append(hp.addrs, netip.PrefixFrom(d, 32))
	}
	hp.onlink = true
	if ifc != nil {
		hp.gw = firstV4(ifc)
		if gw.IsValid() {
			for _, a := range ifc.Addrs {
				if a.Prefix.Addr().Is4() && a.Prefix.Masked().Contains(gw) {
					hp.addrs = append([]netip.Prefix{netip.PrefixFrom(gw, a.Prefix.Bits())}, hp.addrs...)
					hp.gw = a.Prefix.Addr()
					hp.onlink = false
					break
				}
			}
		}
	}
	if !hp.gw.IsValid() {
		return fmt.Errorf("%s %s has no IPv4 address to route back through", hp.router, hp.iface)
	}
	return nil
}

// hostIndex numbers host fabric ends apart from routers' (fabricIndex).
func hostIndex(i int) int { return 1<<24 + i }

// buildHost fills one endpoint namespace: eth0 on the segment's bridge,
// its addresses, and a default route via its router.
func buildHost(hp *hostPlan, fabIdx int, ns nsBuild, fabNS netns.NsHandle, bridges map[string]int) error {
	fs, err := netx.OpenSocket(fabNS)
	if err != nil {
		return tsimerr.Envf("netlink in fabric: %w", err)
	}
	defer fs.Close()
	hh := ns.nl
	return netx.Do(ns.h, func() error {
		for _, k := range []string{"all", "default"} {
			netx.SetSysctl("net.ipv4.conf."+k+".rp_filter", "0")
		}
		v := &netx.Veth{Name: hp.fabric, Index: fabIdx, Master: bridges[hp.seg.bridge], Up: true,
			PeerName: "eth0", PeerNS: ns.h, PeerIndex: 2}
		if err := fs.AddVeth(v); err != nil {
			return tsimerr.Envf("host %s: %w", hp.name, err)
		}
		lo, err := hh.LinkByName("lo")
		if err == nil {
			err = hh.LinkSetUp(lo)
		}
		if err != nil {
			return tsimerr.Envf("host %s: loopback: %w", hp.name, err)
		}
		var eth netlink.Link = &netlink.Device{LinkAttrs: netlink.LinkAttrs{Name: "eth0", Index: v.PeerIndex}}
		if v.PeerIndex == 0 {
			if eth, err = hh.LinkByName("eth0"); err != nil {
				return tsimerr.Envf("host %s: eth0: %w", hp.name, err)
			}
		}
		if err := hh.LinkSetUp(eth); err != nil {
			return tsimerr.Envf("host %s: eth0 up: %w", hp.name, err)
		}
		for _, a := range hp.addrs {
			if err := hh.AddrAdd(eth, &netlink.Addr{IPNet: ipNet(a)}); err != nil {
				return tsimerr.Envf("host %s: address %s: %w", hp.name, a, err)
			}
		}
		rt := &netlink.Route{LinkIndex: eth.Attrs().Index, Gw: net.IP(hp.gw.AsSlice()), Dst: ipNet(netip.MustParsePrefix("0.0.0.0/0"))}
		if hp.onlink {
			rt.Flags = int(syscall.RTNH_F_ONLINK)
		}
		if err := hh.RouteAdd(rt); err != nil {
			return tsimerr.Envf("host %s: default route via %s: %w", hp.name, hp.gw, err)
		}
		return nil
	})
}

// teardown removes what a record lists: processes inside its namespaces
// first, then the namespaces (newest first), then any listed link whose
// namespace still exists.
func teardown(rec *Record) error {
	nss := rec.Namespaces()
	prefix := "tsim-" + rec.ID + "-"
	inodes := map[uint64]bool{}
	for _, n := range nss {
		if !strings.HasPrefix(n, prefix) {
			continue // never touch a name this lab could not have made
		}
		if ino := netx.Inode(n); ino != 0 {
			inodes[ino] = true
		}
	}
	killAll(netx.PidsIn(inodes))
	var errs []error
	for i := len(nss) - 1; i >= 0; i-- {
		if !strings.HasPrefix(nss[i], prefix) {
			continue
		}
		if err := netx.Delete(nss[i]); err != nil {
			errs = append(errs, err)
		}
	}
	for _, it := range rec.Items {
		if it.Kind != itemLink || it.Netns == "" || !strings.HasPrefix(it.Netns, prefix) || !netx.Exists(it.Netns) {
			continue
		}
		delLinkIn(it.Netns, it.Name)
	}
	return errors.Join(errs...)
}

// delLinkIn deletes link name inside the named namespace, if both are still
// there. A namespace that cannot be opened is skipped: a handle made from
// netns.None() would act on the caller's own namespace, the host's.
func delLinkIn(nsName, name string) {
	ns, err := netns.GetFromPath(netx.Path(nsName))
	if err != nil {
		return
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return
	}
	defer h.Close()
	if l, err := h.LinkByName(name); err == nil {
		h.LinkDel(l)
	}
}

// killAll SIGKILLs pids and waits briefly for them to go.
func killAll(pids []int) {
	if len(pids) == 0 {
		return
	}
	starts := map[int]uint64{}
	for _, p := range pids {
		s, _ := netx.ProcStart(p)
		starts[p] = s
		syscall.Kill(p, syscall.SIGKILL)
	}
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		alive := false
		for p, s := range starts {
			if netx.Alive(p, s) {
				alive = true
				break
			}
		}
		if !alive {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Down removes the lab with this id: exactly what its registry lists.
func Down(ctx context.Context, id string, opts Options) error {
	if err := netx.Check(); err != nil {
		return err
	}
	for {
		g, busy, err := openLocked(opts.dir(), id)
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("lab %s: %w", id, ErrNoLab)
		}
		if err != nil {
			return tsimerr.Env(err)
		}
		if busy {
			// Being built or removed by another process: wait for it.
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
			continue
		}
		if err := teardown(&g.rec); err != nil {
			g.release()
			return tsimerr.Envf("lab %s: %w", id, err)
		}
		g.remove()
		return nil
	}
}

// DownAll removes every lab in the registry and returns their ids.
func DownAll(ctx context.Context, opts Options) ([]string, error) {
	return downWhere(ctx, opts, func(*Record) bool { return true })
}

// DownStale removes labs whose owner process is gone (dead, or its pid
// reused by another process) and returns their ids.
func DownStale(ctx context.Context, opts Options) ([]string, error) {
	return downWhere(ctx, opts, stale)
}

func stale(r *Record) bool { return !netx.Alive(r.OwnerPID, r.OwnerStart) }

func downWhere(ctx context.Context, opts Options, pick func(*Record) bool) ([]string, error) {
	if err := netx.Check(); err != nil {
		return nil, err
	}
	recs, err := readRecords(opts.dir())
	if err != nil {
		return nil, tsimerr.Env(err)
	}
	var done []string
	var errs []error
	for _, r := range recs {
		if err := ctx.Err(); err != nil {
			return done, err
		}
		if !pick(&r) {
			continue
		}
		g, busy, err := openLocked(opts.dir(), r.ID)
		if busy || errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !pick(&g.rec) {
			g.release()
			continue
		}
		if err := teardown(&g.rec); err != nil {
			g.release()
			errs = append(errs, fmt.Errorf("lab %s: %w", r.ID, err))
			continue
		}
		g.remove()
		done = append(done, r.ID)
	}
	// Lock files whose record never got written (a crash in between).
	if locks, _ := filepath.Glob(filepath.Join(opts.dir(), "*.lock")); len(locks) > 0 {
		for _, l := range locks {
			id := strings.TrimSuffix(filepath.Base(l), ".lock")
			if _, err := os.Stat(recordPath(opts.dir(), id)); errors.Is(err, os.ErrNotExist) && validID(id) {
				if g, busy, _ := openLocked(opts.dir(), id); !busy && g != nil {
					g.release()
				}
			}
		}
	}
	if len(errs) > 0 {
		return done, tsimerr.Env(errors.Join(errs...))
	}
	return done, nil
}

// List returns the labs in the registry, oldest first.
func List(opts Options) ([]LabInfo, error) {
	recs, err := readRecords(opts.dir())
	if err != nil {
		return nil, tsimerr.Env(err)
	}
	out := []LabInfo{}
	for _, r := range recs {
		out = append(out, LabInfo{ID: r.ID, OwnerPID: r.OwnerPID, Created: r.Created, Routers: r.Routers, Hosts: r.Hosts,
			Fabric: r.Fabric, Complete: r.Complete, Stale: stale(&r), Facts: r.Facts, Digest: r.Digest, Label: r.Label})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out, nil
}
