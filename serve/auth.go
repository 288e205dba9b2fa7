package serve

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/tsim-dev/tsim/internal/users"
)

// cookieName is the session cookie.
const cookieName = "tsim_session"

// session is one logged-in browser or API client.
type session struct {
	user, role, method string
	created, last      time.Time
	key                [32]byte // SHA-256 of the token: names the session's streams
}

// sessions live in memory only: a restart logs everyone out, which is the
// safe failure. Keys are SHA-256 of the cookie value so the map never
// holds a usable token and lookups do not compare secrets byte by byte.
type sessions struct {
	mu        sync.Mutex
	m         map[[32]byte]*session
	idle, max time.Duration
	now       func() time.Time
}

func newSessions(idle, max time.Duration, now func() time.Time) *sessions {
	return &sessions{m: map[[32]byte]*session{}, idle: idle, max: max, now: now}
}

func (ss *sessions) create(user, role, method string) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	tok := base64.RawURLEncoding.EncodeToString(b)
	now := ss.now()
	ss.mu.Lock()
	k := sha256.Sum256([]byte(tok))
	ss.m[k] = &session{user: user, role: role, method: method, created: now, last: now, key: k}
	ss.mu.Unlock()
	return tok, nil
}

// get returns a copy of the live session of tok and marks it used.
func (ss *sessions) get(tok string) (session, bool) {
	if len(tok) != 43 {
		return session{}, false
	}
	k := sha256.Sum256([]byte(tok))
	now := ss.now()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s, ok := ss.m[k]
	if !ok {
		return session{}, false
	}
	if now.Sub(s.last) > ss.idle || now.Sub(s.created) > ss.max {
		delete(ss.m, k)
		return session{}, false
	}
	s.last = now
	return *s, true
}

// alive reports whether the session of key is still valid, without
// marking it used (an open event stream is not activity).
func (ss *sessions) alive(key [32]byte) bool {
	now := ss.now()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s, ok := ss.m[key]
	return ok && now.Sub(s.last) <= ss.idle && now.Sub(s.created) <= ss.max
}

// drop ends the session of tok and returns its key.
func (ss *sessions) drop(tok string) [32]byte {
	k := sha256.Sum256([]byte(tok))
	ss.mu.Lock()
	delete(ss.m, k)
	ss.mu.Unlock()
	return k
}

// dropUser ends every session of user (deleted accounts).
func (ss *sessions) dropUser(user string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for k, s := range ss.m {
		if s.user == user {
			delete(ss.m, k)
		}
	}
}

// sweep forgets expired sessions and returns their keys.
func (ss *sessions) sweep() [][32]byte {
	now := ss.now()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	var gone [][32]byte
	for k, s := range ss.m {
		if now.Sub(s.last) > ss.idle || now.Sub(s.created) > ss.max {
			delete(ss.m, k)
			gone = append(gone, k)
		}
	}
	return gone
}

// limiter counts failed logins per key ("user:NAME", "addr:IP") and locks
// a key out once it reaches its limit inside the window.
type limiter struct {
	mu     sync.Mutex
	m      map[string]*failures
	window time.Duration
	lock   time.Duration
	now    func() time.Time
}

type failures struct {
	first  time.Time
	n      int       // attempts reserved in the window (in flight or failed)
	locked time.Time // until
}

func newLimiter(window, lock time.Duration, now func() time.Time) *limiter {
	return &limiter{m: map[string]*failures{}, window: window, lock: lock, now: now}
}

// reserve counts an attempt against key before its password is checked,
// so concurrent attempts cannot all pass a check made before any of them
// failed. It returns how long key is locked out (0: go ahead). Past limit
// attempts in the window the key is locked.
func (l *limiter) reserve(key string, limit int) time.Duration {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.m[key]
	if f != nil {
		if d := f.locked.Sub(now); d > 0 {
			return d
		}
	}
	if f == nil || now.Sub(f.first) > l.window {
		f = &failures{first: now}
		l.m[key] = f
	}
	if f.n >= limit {
		f.locked = now.Add(l.lock)
		return l.lock
	}
	f.n++
	return 0
}

// release gives back an attempt reserved but not failed (a success, or a
// check that did not run).
func (l *limiter) release(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if f := l.m[key]; f != nil && f.n > 0 {
		f.n--
	}
}

// fail turns a reserved attempt into a failure and reports whether key is
// now locked.
func (l *limiter) fail(key string, limit int) bool {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.m[key]
	if f == nil {
		return false
	}
	if f.n >= limit {
		f.locked = now.Add(l.lock)
		return true
	}
	return false
}

func (l *limiter) reset(key string) {
	l.mu.Lock()
	delete(l.m, key)
	l.mu.Unlock()
}

func (l *limiter) sweep() {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, f := range l.m {
		if now.Sub(f.first) > l.window && now.After(f.locked) {
			delete(l.m, k)
		}
	}
}

// authenticate checks name/password against the users file and then PAM.
// A name present in the users file is never looked up in PAM, so a local
// account cannot be shadowed by (or fall back to) a system account.
func (s *Server) authenticate(ctx context.Context, name, password string) (role, method string, err error) {
	role, exists, ok, err := s.cfg.Users.Verify(name, password)
	if err != nil {
		return "", "", err
	}
	if ok {
		return role, "local", nil
	}
	if exists || s.cfg.PAM == nil {
		return "", "", ErrBadCredentials
	}
	role, err = s.cfg.PAM.Authenticate(ctx, name, password)
	if err != nil {
		return "", "", err
	}
	return role, s.cfg.PAM.Name(), nil
}

type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// auditLog starts an audit line; the caller adds details and sends it.
func (s *Server) auditLog(r *http.Request, action, user string, ok bool) *zerolog.Event {
	return s.audit.Log().Str("action", action).Str("user", user).Str("ip", s.clientAddr(r)).Bool("success", ok)
}

func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	var req loginRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	if req.Username == "" || req.Password == "" {
		writeError(w, http.StatusBadRequest, "username and password are required")
		return
	}
	if len(req.Username) > 64 || len(req.Password) > 1024 {
		writeError(w, http.StatusBadRequest, "username or password too long")
		return
	}
	addr := s.clientAddr(r)
	userKey, addrKey := "user:"+req.Username, "addr:"+addr
	locked := func(d time.Duration) {
		s.auditLog(r, "login_locked", req.Username, false).Send()
		w.Header().Set("Retry-After", strconv.Itoa(int(d.Seconds())+1))
		writeError(w, http.StatusTooManyRequests, "too many failed logins; try again in "+d.Round(time.Second).String())
	}
	// The attempt is counted before the password is hashed: a burst of
	// parallel attempts gets at most the limit evaluated.
	if d := s.limiter.reserve(userKey, s.cfg.LoginUserFails); d > 0 {
		locked(d)
		return
	}
	if d := s.limiter.reserve(addrKey, s.cfg.LoginAddrFails); d > 0 {
		s.limiter.release(userKey)
		locked(d)
		return
	}
	// argon2id costs 19 MiB and a CPU for tens of ms: at most MaxHashing
	// checks run at once, more are turned away rather than queued.
	select {
	case s.hashing <- struct{}{}:
	default:
		s.limiter.release(userKey)
		s.limiter.release(addrKey)
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "too many logins at once; try again in a second")
		return
	}
	s.hashStats.enter()
	role, method, err := s.authenticate(r.Context(), req.Username, req.Password)
	s.hashStats.leave()
	<-s.hashing
	if err != nil {
		if !errors.Is(err, ErrBadCredentials) {
			s.log.Error().Err(err).Str("user", req.Username).Msg("login check failed")
		}
		lockedU := s.limiter.fail(userKey, s.cfg.LoginUserFails)
		lockedA := s.limiter.fail(addrKey, s.cfg.LoginAddrFails)
		s.auditLog(r, "login_failed", req.Username, false).Bool("locked", lockedU || lockedA).Send()
		writeError(w, http.StatusUnauthorized, ErrBadCredentials.Error())
		return
	}
	s.limiter.reset(userKey)
	s.limiter.release(addrKey)
	// A new id on every login: a token planted before login is useless.
	if c, err := r.Cookie(cookieName); err == nil {
		s.streams.closeSession(s.sessions.drop(c.Value))
	}
	tok, err := s.sessions.create(req.Username, role, method)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "cannot create a session")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: tok, Path: "/", HttpOnly: true, Secure: s.cfg.TLS,
		SameSite: http.SameSiteStrictMode, MaxAge: int(s.cfg.SessionMax.Seconds())})
	s.auditLog(r, "login_success", req.Username, true).Str("role", role).Str("method", method).Send()
	setUser(r, req.Username)
	writeJSON(w, http.StatusOK, map[string]string{"username": req.Username, "role": role, "method": method})
}

func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(cookieName); err == nil {
		if sess, ok := s.sessions.get(c.Value); ok {
			s.auditLog(r, "logout", sess.user, true).Send()
		}
		s.streams.closeSession(s.sessions.drop(c.Value))
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", HttpOnly: true, Secure: s.cfg.TLS,
		SameSite: http.SameSiteStrictMode, MaxAge: -1})
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

// authed answers 401 without a live session and passes the session on.
func (s *Server) authed(h func(http.ResponseWriter, *http.Request, session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(cookieName)
		if err != nil {
			writeError(w, http.StatusUnauthorized, "not logged in")
			return
		}
		sess, ok := s.sessions.get(c.Value)
		if !ok {
			writeError(w, http.StatusUnauthorized, "session expired or unknown; log in again")
			return
		}
		setUser(r, sess.user)
		h(w, r, sess)
	}
}

// admin is authed plus the admin role (403 otherwise).
func (s *Server) admin(h func(http.ResponseWriter, *http.Request, session)) http.HandlerFunc {
	return s.authed(func(w http.ResponseWriter, r *http.Request, sess session) {
		if sess.role != users.RoleAdmin {
			writeError(w, http.StatusForbidden, "admin role required")
			return
		}
		h(w, r, sess)
	})
}

// setUser tells the access log who made the request.
func setUser(r *http.Request, user string) {
	if p, ok := r.Context().Value(userKey).(*string); ok {
		*p = user
	}
}

func (s *Server) handleMe(w http.ResponseWriter, r *http.Request, sess session) {
	writeJSON(w, http.StatusOK, map[string]any{"username": sess.user, "role": sess.role, "method": sess.method,
		"since": sess.created.UTC().Format(time.RFC3339)})
}

// hashGauge counts password checks in progress and the most seen at once.
type hashGauge struct {
	mu        sync.Mutex
	cur, peak int
	total     int
}

func (g *hashGauge) enter() {
	g.mu.Lock()
	g.cur++
	g.total++
	g.peak = max(g.peak, g.cur)
	g.mu.Unlock()
}

func (g *hashGauge) leave() {
	g.mu.Lock()
	g.cur--
	g.mu.Unlock()
}

// stats returns the checks run so far and the peak concurrency.
func (g *hashGauge) stats() (total, peak int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.total, g.peak
}
