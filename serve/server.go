// Package serve owns `tsim serve`: an authenticated web front (embedded
// pages and a JSON API under /api/) over the run pipeline. It owns the
// sessions, login rate limits and the bound on password hashing, the event
// streams and their caps, the Host allowlist, the job queue with its
// workers, per-job results under DATA/jobs/<id>/ (per service the deciding
// router and rule with FILE:LINE), uploaded paths (the predecessor's trace
// JSON or a tsim document) and flows files (judged by internal/flowtest),
// retention, stale labs at start-up, and the access and audit logs.
// Nothing from a request reaches a shell: jobs call internal/pipeline
// in-process with flows built by trace.FlowsFromSpec or flowtest.Read.
package serve

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/tsim-dev/tsim/hosts"
	"github.com/tsim-dev/tsim/internal/facts"
	"github.com/tsim-dev/tsim/internal/pipeline"
	"github.com/tsim-dev/tsim/internal/pool"
	"github.com/tsim-dev/tsim/internal/tsimerr"
	"github.com/tsim-dev/tsim/internal/users"
	"github.com/tsim-dev/tsim/trace"
)

// Runner runs one job; pipeline.Run in production, a fake in unit tests.
type Runner func(ctx context.Context, req pipeline.Request, deps pipeline.Deps) (*pipeline.Result, error)

// Authenticator is an external password check (PAM). Authenticate returns
// the role of a valid user, ErrBadCredentials for a wrong name or
// password, or another error when the check itself failed.
type Authenticator interface {
	Name() string
	Authenticate(ctx context.Context, user, password string) (role string, err error)
}

// ErrBadCredentials is a failed password check.
var ErrBadCredentials = errors.New("invalid user name or password")

// Config configures a Server. Zero values take the documented defaults.
type Config struct {
	DataDir string      // required: jobs/ and the logs live here
	Users   *users.File // required: local users
	PAM     Authenticator
	Facts   *facts.Facts // required: loaded once, shared by all jobs
	Pool    *pool.Pool   // shared by all jobs; default pool.New(16, NumCPU)

	Workers       int           // concurrent jobs; default 2
	JobTimeout    time.Duration // per job, queue wait excluded; default 10m
	Retention     time.Duration // finished jobs kept; default 720h (30 days)
	MaxServices   int           // flows per job; default 32
	MaxQueued     int           // jobs waiting in the queue; default 100
	MaxPerUser    int           // queued+running jobs per user; default 5
	MaxBatchFlows int           // flows of an uploaded flows file; default 256

	IdleTimeout time.Duration // session idle timeout; default 30m
	SessionMax  time.Duration // absolute session lifetime; default 12h
	TLS         bool          // cookies get Secure, responses HSTS

	LoginUserFails int           // failures per user name before lockout; default 5
	LoginAddrFails int           // failures per client address before lockout; default 20
	LoginWindow    time.Duration // failures are counted over this window; default 15m
	LoginLockout   time.Duration // lockout duration; default 15m
	MaxHashing     int           // password checks at once (argon2id, 19 MiB each); default NumCPU

	MaxStreamsPerUser int // open event streams per user; default 16
	MaxStreams        int // open event streams in total; default 512

	// Hosts are extra names the Host header may carry (besides localhost,
	// the loopback addresses and the listen address); anything else is
	// refused, so a DNS-rebinding page cannot reach the server.
	Hosts []string

	// TrustedProxies are the peers whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix

	// Pipeline options passed through to every job.
	Paper        string
	ProbeTimeout time.Duration
	Scope        string
	Registry     string

	Log       zerolog.Logger // application log
	AccessLog io.Writer      // JSON lines; nil = discard
	AuditLog  io.Writer      // JSON lines; nil = discard

	Runner Runner           // default pipeline.Run
	Now    func() time.Time // default time.Now (tests move the clock)
}

// Defaults returns the documented defaults of every tunable field.
func Defaults() Config {
	var c Config
	c.setLimits()
	return c
}

func (c *Config) setLimits() {
	set := func(p *int, v int) {
		if *p <= 0 {
			*p = v
		}
	}
	setD := func(p *time.Duration, v time.Duration) {
		if *p <= 0 {
			*p = v
		}
	}
	set(&c.Workers, 2)
	set(&c.MaxServices, 32)
	set(&c.MaxQueued, 100)
	set(&c.MaxPerUser, 5)
	set(&c.MaxBatchFlows, 256)
	set(&c.LoginUserFails, 5)
	set(&c.LoginAddrFails, 20)
	set(&c.MaxHashing, runtime.NumCPU())
	set(&c.MaxStreamsPerUser, 16)
	set(&c.MaxStreams, 512)
	setD(&c.JobTimeout, 10*time.Minute)
	setD(&c.Retention, 30*24*time.Hour)
	setD(&c.IdleTimeout, 30*time.Minute)
	setD(&c.SessionMax, 12*time.Hour)
	setD(&c.LoginWindow, 15*time.Minute)
	setD(&c.LoginLockout, 15*time.Minute)
	// Concurrent labs share the CPUs: reach's 300 ms default loses answers
	// under load (measured with 3 workers on 2 cores), so jobs wait longer.
	setD(&c.ProbeTimeout, 2*time.Second)
}

func (c *Config) defaults() error {
	if c.DataDir == "" {
		return tsimerr.Inputf("serve: --data is required")
	}
	if c.Users == nil {
		return tsimerr.Inputf("serve: --users is required")
	}
	if c.Facts == nil {
		return tsimerr.Inputf("serve: no facts")
	}
	c.setLimits()
	if c.Paper == "" {
		c.Paper = "A4"
	}
	if c.Pool == nil {
		c.Pool = pool.New(16, runtime.NumCPU())
	}
	if c.Runner == nil {
		c.Runner = pipeline.Run
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.AccessLog == nil {
		c.AccessLog = io.Discard
	}
	if c.AuditLog == nil {
		c.AuditLog = io.Discard
	}
	return nil
}

// Server is the web front. Create it with New, start the workers with
// Start, serve Handler, stop with Close.
type Server struct {
	cfg       Config
	log       zerolog.Logger
	access    zerolog.Logger
	audit     zerolog.Logger
	sessions  *sessions
	limiter   *limiter
	streams   *streams
	hashing   chan struct{} // semaphore of password checks
	hashStats hashGauge
	hosts     map[string]bool // Host header names served
	jobs      *jobs
	engine    *trace.Engine
	engineMu  sync.Mutex // Engine is not documented as safe for concurrent walks
	handler   http.Handler

	ctx    context.Context // cancelled by Close: ends workers and streams
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New checks cfg, loads the jobs kept under DataDir and builds the handler.
func New(cfg Config) (*Server, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(cfg.DataDir, "jobs"), 0o700); err != nil {
		return nil, tsimerr.Env(fmt.Errorf("serve: data dir: %w", err))
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg:      cfg,
		log:      cfg.Log,
		access:   zerolog.New(&lockedWriter{w: cfg.AccessLog}).With().Timestamp().Logger(),
		audit:    zerolog.New(&lockedWriter{w: cfg.AuditLog}).With().Timestamp().Logger(),
		sessions: newSessions(cfg.IdleTimeout, cfg.SessionMax, cfg.Now),
		limiter:  newLimiter(cfg.LoginWindow, cfg.LoginLockout, cfg.Now),
		streams:  newStreams(cfg.MaxStreamsPerUser, cfg.MaxStreams),
		hashing:  make(chan struct{}, cfg.MaxHashing),
		hosts:    map[string]bool{},
		engine:   trace.New(cfg.Facts),
		ctx:      ctx,
		cancel:   cancel,
	}
	for _, h := range append([]string{"localhost", "127.0.0.1", "::1"}, cfg.Hosts...) {
		s.hosts[normHost(h)] = true
	}
	s.jobs = newJobs(s)
	if err := s.jobs.load(); err != nil {
		cancel()
		return nil, err
	}
	s.handler = s.routes()
	return s, nil
}

// Handler is the HTTP handler of the whole site.
func (s *Server) Handler() http.Handler { return s.handler }

// Start starts the job workers and the retention sweeper.
func (s *Server) Start() {
	for i := 0; i < s.cfg.Workers; i++ {
		s.wg.Go(s.jobs.worker)
	}
	s.wg.Go(s.sweeper)
}

// Close cancels queued and running jobs (their labs are removed by the
// pipeline), ends event streams and waits for the workers, up to ctx.
func (s *Server) Close(ctx context.Context) error {
	s.cancel()
	s.jobs.shutdown()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ListenAndServe serves on addr (TLS when certFile is set) until ctx ends,
// then shuts down gracefully: running jobs are cancelled and cleaned up.
// ready, when not nil, receives the bound address.
func (s *Server) ListenAndServe(ctx context.Context, addr, certFile, keyFile string, ready func(net.Addr)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return tsimerr.Env(fmt.Errorf("serve: %w", err))
	}
	hs := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    32 << 10,
		BaseContext:       func(net.Listener) context.Context { return s.ctx },
		// TLS handshake failures and the like go to the application log.
		ErrorLog: stdlog.New(s.log.With().Str("component", "http").Logger(), "", 0),
	}
	if certFile != "" {
		hs.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	s.allowListenHost(ln.Addr())
	s.Start()
	if ready != nil {
		ready(ln.Addr())
	}
	errc := make(chan error, 1)
	go func() {
		if certFile != "" {
			errc <- hs.ServeTLS(ln, certFile, keyFile)
		} else {
			errc <- hs.Serve(ln)
		}
	}()
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cerr := s.Close(sctx) // ends SSE streams first so Shutdown does not wait for them
	_ = hs.Shutdown(sctx)
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return tsimerr.Env(fmt.Errorf("serve: %w", serveErr))
	}
	return cerr
}

// sweeper applies retention and forgets expired sessions and login
// failures, once a minute.
func (s *Server) sweeper() {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		s.sweepOnce()
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Server) sweepOnce() {
	s.jobs.sweep()
	s.streams.closeSessions(s.sessions.sweep())
	s.limiter.sweep()
}

// lockedWriter serialises writes of log lines from many goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// routes builds the mux and wraps it in the middleware.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/login", s.handleLogin)
	mux.HandleFunc("POST /api/logout", s.handleLogout)
	mux.HandleFunc("GET /api/me", s.authed(s.handleMe))
	mux.HandleFunc("GET /api/config", s.authed(s.handleConfig))
	mux.HandleFunc("GET /api/jobs", s.authed(s.handleListJobs))
	mux.HandleFunc("POST /api/jobs", s.authed(s.handleSubmit))
	mux.HandleFunc("GET /api/jobs/{id}", s.authed(s.handleJob))
	mux.HandleFunc("DELETE /api/jobs/{id}", s.authed(s.handleCancel))
	mux.HandleFunc("GET /api/jobs/{id}/events", s.authed(s.handleEvents))
	mux.HandleFunc("GET /api/jobs/{id}/report.pdf", s.authed(s.handlePDF))
	mux.HandleFunc("GET /api/jobs/{id}/document.json", s.authed(s.handleDocument))
	mux.HandleFunc("GET /api/jobs/{id}/junit.xml", s.authed(s.handleJUnit))
	mux.HandleFunc("GET /api/admin/overview", s.admin(s.handleAdminOverview))
	mux.HandleFunc("GET /api/admin/users", s.admin(s.handleAdminUsers))
	mux.HandleFunc("POST /api/admin/users", s.admin(s.handleAdminAddUser))
	mux.HandleFunc("DELETE /api/admin/users/{name}", s.admin(s.handleAdminDeleteUser))
	mux.Handle("GET /", staticHandler())

	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusForbidden, "cross-origin request refused")
	}))
	var h http.Handler = mux
	h = cop.Handler(h)
	h = s.limitBody(h)
	h = s.checkHost(h)
	h = s.headers(h)
	h = s.logAccess(h)
	return h
}

// maxBody bounds request bodies; the API takes small JSON objects only,
// except a job submission, which may carry an uploaded trace (100 kB) or
// flows file (256 KiB), JSON-escaped.
const (
	maxBody   = 64 << 10
	maxSubmit = 768 << 10
)

func bodyLimit(r *http.Request) int64 {
	if r.Method == http.MethodPost && r.URL.Path == "/api/jobs" {
		return maxSubmit
	}
	return maxBody
}

func (s *Server) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limit := bodyLimit(r)
		if r.ContentLength > limit {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d KiB", limit>>10))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		next.ServeHTTP(w, r)
	})
}

// normHost lower-cases a host name and drops a trailing dot and IPv6
// brackets.
func normHost(h string) string {
	h = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(h)), ".")
	return strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
}

// allowListenHost adds the bound address to the served names; an
// unspecified address (0.0.0.0, ::) adds every address of the machine and
// its host name.
func (s *Server) allowListenHost(a net.Addr) {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return
	}
	ip, _ := netip.AddrFromSlice(ta.IP)
	ip = ip.Unmap()
	if !ip.IsUnspecified() {
		s.hosts[normHost(ip.String())] = true
		return
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, x := range addrs {
			if p, err := netip.ParsePrefix(x.String()); err == nil {
				s.hosts[normHost(p.Addr().String())] = true
			}
		}
	}
	if hn, err := os.Hostname(); err == nil {
		s.hosts[normHost(hn)] = true
	}
}

// checkHost refuses requests whose Host header names a host this server
// was not configured for (DNS rebinding: a page of evil.example whose name
// now resolves to 127.0.0.1 sends Host: evil.example).
func (s *Server) checkHost(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Host
		if hh, _, err := net.SplitHostPort(h); err == nil {
			h = hh
		}
		if !s.hosts[normHost(h)] {
			writeError(w, http.StatusMisdirectedRequest, "this server does not answer to that host name (see tsim serve --host)")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "SAMEORIGIN")
		h.Set("Content-Security-Policy", "default-src 'self'; object-src 'self'; frame-src 'self'; frame-ancestors 'self'; base-uri 'none'; form-action 'self'")
		if s.cfg.TLS {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		if strings.HasPrefix(r.URL.Path, "/api/") {
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

// statusWriter records status and size for the access log; it passes
// Flush through for SSE.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
	user   string
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

type ctxKey int

const userKey ctxKey = 1

func (s *Server) logAccess(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), userKey, &sw.user)))
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		s.access.Log().Str("ip", s.clientAddr(r)).Str("method", r.Method).Str("path", r.URL.Path).
			Int("status", sw.status).Int64("bytes", sw.bytes).
			Float64("ms", float64(time.Since(start).Microseconds())/1000).
			Str("user", sw.user).Str("agent", r.UserAgent()).Send()
	})
}

// clientAddr is the peer address, or the right-most address of
// X-Forwarded-For not belonging to a trusted proxy when the peer is one.
func (s *Server) clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil || !s.trusted(peer) {
		return host
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		if !s.trusted(a) {
			return a.String()
		}
	}
	return host
}

func (s *Server) trusted(a netip.Addr) bool {
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(a.Unmap()) {
			return true
		}
	}
	return false
}

// writeJSON answers v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	_ = enc.Encode(v)
}

// writeError answers {"error": msg}.
func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// decodeJSON reads one JSON object of at most maxBody bytes into v and
// answers the error itself (false) when the body is not acceptable.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	ct := r.Header.Get("Content-Type")
	if mt, _, _ := strings.Cut(ct, ";"); strings.TrimSpace(strings.ToLower(mt)) != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, "want Content-Type: application/json")
		return false
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d KiB", bodyLimit(r)>>10))
			return false
		}
		writeError(w, http.StatusBadRequest, "bad JSON body: "+err.Error())
		return false
	}
	if dec.More() {
		writeError(w, http.StatusBadRequest, "bad JSON body: more than one value")
		return false
	}
	return true
}

// ReapStaleLabs removes the labs of the registry whose owner process is
// gone (as `tsim hosts down --stale`), typically those a crashed server
// left behind, and records for each which job it belonged to: in the
// audit log and, for a job still kept, in its job.json. It returns the
// labs removed.
func (s *Server) ReapStaleLabs(ctx context.Context) ([]hosts.LabInfo, error) {
	opts := hosts.Options{RegistryDir: s.cfg.Registry, Log: s.log}
	labs, err := hosts.List(opts)
	if err != nil {
		return nil, err
	}
	byID := map[string]hosts.LabInfo{}
	for _, l := range labs {
		if l.Stale {
			byID[l.ID] = l
		}
	}
	if len(byID) == 0 {
		return nil, nil
	}
	ids, err := hosts.DownStale(ctx, opts)
	var out []hosts.LabInfo
	for _, id := range ids {
		l := byID[id] // a lab that went stale after List has no label here
		l.ID = id
		out = append(out, l)
		job := jobOfLab(l.Label)
		s.log.Warn().Str("lab", id).Str("job", job).Msg("removed a stale lab left by an earlier run")
		s.audit.Log().Str("action", "lab_reaped").Str("lab", id).Str("job", job).Bool("success", true).Send()
		if job != "" {
			s.jobs.noteReaped(job, id)
		}
	}
	return out, err
}
