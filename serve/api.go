package serve

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tsim-dev/tsim/hosts"
	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/users"
	"github.com/tsim-dev/tsim/trace"
)

// serviceGroups feed the services picker; every name is a portspec
// service name, so the page's choice is a plain SPEC.
var serviceGroups = []struct {
	Name     string   `json:"name"`
	Services []string `json:"services"`
}{
	{"Remote access", []string{"ssh", "rdp", "vnc", "telnet"}},
	{"Web", []string{"http", "https", "http-alt", "https-alt"}},
	{"Mail", []string{"smtp", "submission", "imaps", "pop3s"}},
	{"Name and time", []string{"dns", "ntp"}},
	{"Databases", []string{"mysql", "postgres", "mssql", "oracle", "redis"}},
	{"Files", []string{"smb", "nfs", "ftp"}},
	{"Directory", []string{"ldap", "ldaps", "kerberos"}},
	{"Monitoring", []string{"snmp", "syslog"}},
	{"Diagnostics", []string{"icmp"}},
}

func (s *Server) handleConfig(w http.ResponseWriter, r *http.Request, sess session) {
	writeJSON(w, http.StatusOK, map[string]any{
		"groups":       serviceGroups,
		"max_services": s.cfg.MaxServices,
		"job_timeout":  s.cfg.JobTimeout.String(),
		"retention":    s.cfg.Retention.String(),
		"facts":        map[string]any{"source": s.cfg.Facts.Source, "routers": len(s.cfg.Facts.Routers)},
	})
}

type submitRequest struct {
	Src      string `json:"src"`
	Dst      string `json:"dst"`
	Services string `json:"services"`
	SPort    int    `json:"sport,omitempty"`
}

// validateSubmit turns a request into checked (src, dst, spec, flows) or a
// one-line reason for a 400.
func (s *Server) validateSubmit(req *submitRequest) (int, error) {
	req.Src, req.Dst, req.Services = strings.TrimSpace(req.Src), strings.TrimSpace(req.Dst), strings.TrimSpace(req.Services)
	for _, a := range []struct{ what, v string }{{"src", req.Src}, {"dst", req.Dst}} {
		if a.v == "" {
			return 0, fmt.Errorf("%s: required", a.what)
		}
		ip, err := netip.ParseAddr(a.v)
		if err != nil || !ip.Is4() {
			return 0, fmt.Errorf("%s: %q is not an IPv4 address", a.what, a.v)
		}
	}
	if len(req.Services) > 4096 {
		return 0, fmt.Errorf("services: specification longer than 4096 characters")
	}
	flows, err := trace.FlowsFromSpec(req.Src, req.Dst, req.Services, req.SPort)
	if err != nil {
		return 0, err
	}
	if len(flows) > s.cfg.MaxServices {
		return 0, fmt.Errorf("services: %d services; this server runs at most %d per job", len(flows), s.cfg.MaxServices)
	}
	s.engineMu.Lock()
	err = s.engine.Validate(flows[0])
	var t *doc.Trace
	if err == nil {
		t = s.engine.Trace(s.ctx, flows[0])
	}
	s.engineMu.Unlock()
	if err != nil {
		return 0, err
	}
	if t.Disposition == doc.UnknownSource {
		return 0, fmt.Errorf("src: %s is not in the modelled network (%s)", req.Src, t.Reason)
	}
	return len(flows), nil
}

func (s *Server) handleSubmit(w http.ResponseWriter, r *http.Request, sess session) {
	var req submitRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	n, err := s.validateSubmit(&req)
	if err != nil {
		s.auditLog(r, "job_rejected", sess.user, false).Str("reason", err.Error()).Send()
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	m, pos, err := s.jobs.submit(sess.user, req.Src, req.Dst, req.Services, req.SPort, n)
	if err != nil {
		var le *errLimit
		if errors.As(err, &le) {
			if le.status == http.StatusServiceUnavailable || le.status == http.StatusTooManyRequests {
				w.Header().Set("Retry-After", "30")
			}
			writeError(w, le.status, le.msg)
			return
		}
		s.log.Error().Err(err).Msg("cannot create job")
		writeError(w, http.StatusInternalServerError, "cannot create the job")
		return
	}
	s.auditLog(r, "job_submitted", sess.user, true).Str("job", m.ID).Str("src", req.Src).Str("dst", req.Dst).
		Str("services", req.Services).Int("flows", n).Send()
	w.Header().Set("Location", "/api/jobs/"+m.ID)
	writeJSON(w, http.StatusAccepted, map[string]any{"id": m.ID, "state": m.State, "position": pos})
}

// jobView is a job as the API shows it.
type jobView struct {
	jobMeta
	Position int               `json:"queue_position,omitempty"`
	Links    map[string]string `json:"links"`
}

func (s *Server) view(m jobMeta) jobView {
	v := jobView{jobMeta: m, Links: map[string]string{"self": "/api/jobs/" + m.ID, "events": "/api/jobs/" + m.ID + "/events"}}
	if m.State == StateQueued {
		v.Position = s.jobs.position(m.ID)
	}
	if m.Report {
		v.Links["report"] = "/api/jobs/" + m.ID + "/report.pdf"
	}
	if m.Result != nil {
		v.Links["document"] = "/api/jobs/" + m.ID + "/document.json"
	}
	return v
}

// lookupJob validates the id and the caller's right to see the job. Other
// users' jobs answer exactly like missing ones.
func (s *Server) lookupJob(w http.ResponseWriter, r *http.Request, sess session) (jobMeta, bool) {
	id := r.PathValue("id")
	if !validID(id) {
		writeError(w, http.StatusBadRequest, "invalid job id (want 32 lower-case hex digits)")
		return jobMeta{}, false
	}
	m, ok := s.jobs.get(id)
	if !ok || (m.Owner != sess.user && sess.role != users.RoleAdmin) {
		writeError(w, http.StatusNotFound, "no such job")
		return jobMeta{}, false
	}
	return m, true
}

func (s *Server) handleJob(w http.ResponseWriter, r *http.Request, sess session) {
	if m, ok := s.lookupJob(w, r, sess); ok {
		writeJSON(w, http.StatusOK, s.view(m))
	}
}

func (s *Server) handleListJobs(w http.ResponseWriter, r *http.Request, sess session) {
	owner := sess.user
	if r.URL.Query().Get("all") == "1" && sess.role == users.RoleAdmin {
		owner = ""
	}
	q := r.URL.Query()
	limit, offset := 50, 0
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 200 {
			writeError(w, http.StatusBadRequest, "limit: want 1-200")
			return
		}
		limit = n
	}
	if v := q.Get("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "offset: want a number ≥ 0")
			return
		}
		offset = n
	}
	ms := s.jobs.list(owner)
	page := ms[min(offset, len(ms)):min(offset+limit, len(ms))]
	out := make([]jobView, 0, len(page))
	for _, m := range page {
		out = append(out, s.view(m))
	}
	res := map[string]any{"jobs": out, "total": len(ms), "offset": offset, "limit": limit}
	if offset+limit < len(ms) {
		next := fmt.Sprintf("/api/jobs?offset=%d&limit=%d", offset+limit, limit)
		if owner == "" {
			next += "&all=1"
		}
		res["next"] = next
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) handleCancel(w http.ResponseWriter, r *http.Request, sess session) {
	m, ok := s.lookupJob(w, r, sess)
	if !ok {
		return
	}
	changed, err := s.jobs.cancelJob(m.ID, sess.user)
	if err != nil {
		writeError(w, http.StatusNotFound, "no such job")
		return
	}
	if !changed {
		writeError(w, http.StatusConflict, "job already "+m.State)
		return
	}
	s.auditLog(r, "job_cancelled", sess.user, true).Str("job", m.ID).Str("owner", m.Owner).Send()
	m, _ = s.jobs.get(m.ID)
	writeJSON(w, http.StatusAccepted, s.view(m))
}

// handleEvents streams a job's progress as SSE: every event has an id, a
// reconnecting client sends Last-Event-ID (or ?last=N) and gets only what
// it missed; the stream ends with an "end" event once the job finished.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request, sess session) {
	m, ok := s.lookupJob(w, r, sess)
	if !ok {
		return
	}
	fl, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, "streaming unsupported")
		return
	}
	st, ctx, refused := s.streams.open(r.Context(), sess)
	if refused != "" {
		w.Header().Set("Retry-After", "30")
		writeError(w, http.StatusTooManyRequests, refused)
		return
	}
	defer s.streams.close(st)
	last := 0
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		last, _ = strconv.Atoi(v)
	} else if v := r.URL.Query().Get("last"); v != "" {
		last, _ = strconv.Atoi(v)
	}
	last = max(last, 0)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, "retry: 2000\n\n")
	fl.Flush()
	ping := time.NewTicker(15 * time.Second)
	defer ping.Stop()
	for {
		evs, changed, done := s.jobs.since(m.ID, last)
		for _, e := range evs {
			b, _ := json.Marshal(e)
			if _, err := fmt.Fprintf(w, "id: %d\nevent: progress\ndata: %s\n\n", e.ID, b); err != nil {
				return
			}
			last = e.ID
		}
		if done {
			cur, _ := s.jobs.get(m.ID)
			b, _ := json.Marshal(s.view(cur))
			fmt.Fprintf(w, "event: end\ndata: %s\n\n", b)
			fl.Flush()
			return
		}
		fl.Flush()
		select {
		case <-changed:
		case <-ping.C:
			if !s.sessions.alive(sess.key) {
				return
			}
			if _, err := fmt.Fprint(w, ": ping\n\n"); err != nil {
				return
			}
		case <-ctx.Done():
			return
		case <-s.ctx.Done():
			return
		}
	}
}

func (s *Server) handlePDF(w http.ResponseWriter, r *http.Request, sess session) {
	m, ok := s.lookupJob(w, r, sess)
	if !ok {
		return
	}
	if !m.Report {
		writeError(w, http.StatusConflict, "no report for this job (it is "+m.State+")")
		return
	}
	f, err := os.Open(filepath.Join(s.jobs.dir(m.ID), reportFile))
	if err != nil {
		writeError(w, http.StatusNotFound, "report file missing (removed by retention?)")
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "cannot read the report")
		return
	}
	disp := "inline"
	if r.URL.Query().Get("download") == "1" {
		disp = "attachment"
	}
	h := w.Header()
	// The browser's PDF viewer must be allowed to render inside our page.
	h.Del("Content-Security-Policy")
	h.Set("Content-Type", "application/pdf")
	h.Set("Content-Disposition", fmt.Sprintf(`%s; filename="tsim-%s.pdf"`, disp, m.ID[:12]))
	h.Set("Cache-Control", "private, no-store")
	http.ServeContent(w, r, "", st.ModTime(), f)
}

func (s *Server) handleDocument(w http.ResponseWriter, r *http.Request, sess session) {
	m, ok := s.lookupJob(w, r, sess)
	if !ok {
		return
	}
	data, err := os.ReadFile(filepath.Join(s.jobs.dir(m.ID), documentFile))
	if err != nil {
		writeError(w, http.StatusConflict, "no document for this job (it is "+m.State+")")
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Write(data)
}

func (s *Server) handleAdminOverview(w http.ResponseWriter, r *http.Request, sess session) {
	all := s.jobs.list("")
	var queued, running, finished []jobView
	for _, m := range all {
		switch {
		case m.State == StateQueued:
			queued = append(queued, s.view(m))
		case m.State == StateRunning:
			running = append(running, s.view(m))
		case len(finished) < 100:
			finished = append(finished, s.view(m))
		}
	}
	// The queue oldest first (its order), running jobs by start.
	sort.SliceStable(queued, func(i, j int) bool { return queued[i].Position < queued[j].Position })
	sort.SliceStable(running, func(i, j int) bool {
		a, b := running[i].Started, running[j].Started
		return a != nil && b != nil && a.Before(*b)
	})
	out := map[string]any{
		"queued": nonNil(queued), "running": nonNil(running), "finished": nonNil(finished),
		"workers": s.cfg.Workers, "job_timeout": s.cfg.JobTimeout.String(), "retention": s.cfg.Retention.String(),
		"max_queued": s.cfg.MaxQueued, "max_per_user": s.cfg.MaxPerUser, "jobs_kept": len(all),
	}
	labs, err := hosts.List(hosts.Options{RegistryDir: s.cfg.Registry})
	if err != nil {
		out["labs_error"] = err.Error()
		labs = []hosts.LabInfo{}
	}
	type labView struct {
		hosts.LabInfo
		Job string `json:"job,omitempty"` // the serve job the lab belongs to
	}
	lv := make([]labView, 0, len(labs))
	for _, l := range labs {
		lv = append(lv, labView{LabInfo: l, Job: jobOfLab(l.Label)})
	}
	out["labs"] = lv
	writeJSON(w, http.StatusOK, out)
}

func nonNil(v []jobView) []jobView {
	if v == nil {
		return []jobView{}
	}
	return v
}

func (s *Server) handleAdminUsers(w http.ResponseWriter, r *http.Request, sess session) {
	list, err := s.cfg.Users.List()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	pam := ""
	if s.cfg.PAM != nil {
		pam = s.cfg.PAM.Name()
	}
	writeJSON(w, http.StatusOK, map[string]any{"users": list, "external": pam})
}

type addUserRequest struct {
	Name     string `json:"name"`
	Role     string `json:"role"`
	Password string `json:"password"`
}

func (s *Server) handleAdminAddUser(w http.ResponseWriter, r *http.Request, sess session) {
	var req addUserRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	if req.Role == "" {
		req.Role = users.RoleUser
	}
	if err := s.cfg.Users.Add(req.Name, req.Role, req.Password); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.auditLog(r, "user_added", sess.user, true).Str("target", req.Name).Str("role", req.Role).Send()
	writeJSON(w, http.StatusCreated, map[string]string{"name": req.Name, "role": req.Role})
}

func (s *Server) handleAdminDeleteUser(w http.ResponseWriter, r *http.Request, sess session) {
	name := r.PathValue("name")
	if err := users.ValidName(name); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if name == sess.user {
		writeError(w, http.StatusConflict, "you cannot delete your own account")
		return
	}
	if err := s.cfg.Users.Delete(name); err != nil {
		if errors.Is(err, users.ErrNoUser) {
			writeError(w, http.StatusNotFound, "no such user")
			return
		}
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	s.sessions.dropUser(name)
	s.streams.closeUser(name)
	s.auditLog(r, "user_deleted", sess.user, true).Str("target", name).Send()
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}
