package serve

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
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
	s.engineMu.Lock()
	uplinks := s.engine.Uplinks()
	s.engineMu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"groups":       serviceGroups,
		"max_services": s.cfg.MaxServices,
		"job_timeout":  s.cfg.JobTimeout.String(),
		"retention":    s.cfg.Retention.String(),
		"facts":        map[string]any{"source": s.cfg.Facts.Source, "routers": len(s.cfg.Facts.Routers)},
		"ingress":      s.ingressChoices(),
		"uplinks":      uplinks,
		"max_flows":    s.cfg.MaxBatchFlows,
		"max_trace":    maxTraceBytes,
	})
}

type submitRequest struct {
	Src      string `json:"src"`
	Dst      string `json:"dst"`
	Services string `json:"services"`
	SPort    int    `json:"sport,omitempty"`
	// Ingress is ROUTER:IFACE where a source outside the network (or on a
	// segment several routers share) enters.
	Ingress string `json:"ingress,omitempty"`
	// Trace is an uploaded path (the predecessor's trace JSON or a tsim
	// document with a trace section): the job tests it instead of
	// simulating one.
	Trace string `json:"trace,omitempty"`
	// FlowsCSV is an uploaded flows file (the `tsim run --flows` format,
	// with expect): one job, one test per line.
	FlowsCSV string `json:"flows_csv,omitempty"`
}

// Job directory files of uploads.
const (
	pathFile  = "path.json"
	flowsFile = "flows.csv"
)

// maxFlowsBytes bounds an uploaded flows file.
const maxFlowsBytes = 256 << 10

// jobPlan is a validated submission: the job's metadata and the files
// its directory gets before it is queued.
type jobPlan struct {
	meta  jobMeta
	files map[string][]byte
}

// checkSources refuses flows whose source the network does not know
// (without an ingress): the job would only end UNKNOWN.
func (s *Server) checkSources(flows []*doc.Flow) error {
	s.engineMu.Lock()
	defer s.engineMu.Unlock()
	seen := map[string]bool{}
	for _, fl := range flows {
		if err := s.engine.Validate(fl); err != nil {
			return lineErr(fl, err)
		}
		k := fl.Src + "|" + fl.Ingress
		if seen[k] {
			continue
		}
		seen[k] = true
		if t := s.engine.Trace(s.ctx, fl); t.Disposition == doc.UnknownSource {
			return lineErr(fl, fmt.Errorf("src: %s is not in the modelled network (%s); choose where it enters (Options)", fl.Src, t.Reason))
		}
	}
	return nil
}

func lineErr(fl *doc.Flow, err error) error {
	if fl.Line > 0 {
		return fmt.Errorf("%s:%d: %w", flowsFile, fl.Line, err)
	}
	return err
}

// validateSubmit turns a request into a jobPlan or a one-line reason for a
// 400.
func (s *Server) validateSubmit(req *submitRequest) (*jobPlan, error) {
	req.Src, req.Dst, req.Services = strings.TrimSpace(req.Src), strings.TrimSpace(req.Dst), strings.TrimSpace(req.Services)
	req.Ingress = strings.TrimSpace(req.Ingress)
	if len(req.Services) > 4096 {
		return nil, fmt.Errorf("services: specification longer than 4096 characters")
	}
	if req.FlowsCSV != "" {
		return s.validateBatch(req)
	}
	var up *userPath
	if req.Trace != "" {
		var err error
		if up, err = parseUserPath([]byte(req.Trace), s.cfg.Facts); err != nil {
			return nil, err
		}
		for _, a := range []struct{ what, form, trace string }{{"src", req.Src, up.Src}, {"dst", req.Dst, up.Dst}} {
			if a.form != "" && a.form != a.trace {
				return nil, fmt.Errorf("%s: %s differs from the uploaded trace's %s (leave it empty)", a.what, a.form, a.trace)
			}
		}
		req.Src, req.Dst = up.Src, up.Dst
		if req.Ingress != "" {
			return nil, fmt.Errorf("ingress: an uploaded trace already says where the path starts")
		}
	}
	for _, a := range []struct{ what, v string }{{"src", req.Src}, {"dst", req.Dst}} {
		if a.v == "" {
			return nil, fmt.Errorf("%s: required", a.what)
		}
		ip, err := netip.ParseAddr(a.v)
		if err != nil || !ip.Is4() {
			return nil, fmt.Errorf("%s: %q is not an IPv4 address", a.what, a.v)
		}
	}
	flows, err := trace.FlowsFromSpec(req.Src, req.Dst, req.Services, req.SPort)
	if err != nil {
		return nil, err
	}
	if len(flows) > s.cfg.MaxServices {
		return nil, fmt.Errorf("services: %d services; this server runs at most %d per job", len(flows), s.cfg.MaxServices)
	}
	plan := &jobPlan{meta: jobMeta{Src: req.Src, Dst: req.Dst, Services: req.Services, SPort: req.SPort, Flows: len(flows)},
		files: map[string][]byte{}}
	if up != nil {
		data, _ := json.MarshalIndent(up, "", "  ")
		plan.files[pathFile] = data
		plan.meta.PathFrom = up.Format
		return plan, nil
	}
	if req.Ingress != "" {
		if !slices.Contains(s.ingressChoices(), req.Ingress) {
			return nil, fmt.Errorf("ingress: %q is not ROUTER:IFACE of the facts", req.Ingress)
		}
		for _, fl := range flows {
			fl.Ingress = req.Ingress
		}
		plan.meta.Ingress = req.Ingress
	}
	if err := s.checkSources(flows[:1]); err != nil {
		return nil, err
	}
	return plan, nil
}

// validateBatch checks an uploaded flows file.
func (s *Server) validateBatch(req *submitRequest) (*jobPlan, error) {
	if req.Trace != "" || req.Src != "" || req.Dst != "" || req.Services != "" || req.Ingress != "" {
		return nil, fmt.Errorf("flows file: it carries its own sources, destinations and services; leave the form's fields empty")
	}
	if len(req.FlowsCSV) > maxFlowsBytes {
		return nil, fmt.Errorf("flows file: %d bytes; at most %d", len(req.FlowsCSV), maxFlowsBytes)
	}
	file, err := readFlows([]byte(req.FlowsCSV))
	if err != nil {
		return nil, err
	}
	flows := file.Flows()
	if len(flows) > s.cfg.MaxBatchFlows {
		return nil, fmt.Errorf("flows file: %d flows; this server runs at most %d per job", len(flows), s.cfg.MaxBatchFlows)
	}
	if err := s.checkSources(flows); err != nil {
		return nil, err
	}
	return &jobPlan{meta: jobMeta{Src: flows[0].Src, Dst: flows[0].Dst, Services: fmt.Sprintf("flows file: %d lines", len(file.Lines)),
		Flows: len(flows), Batch: true, Tests: pendingTests(file)}, files: map[string][]byte{flowsFile: []byte(req.FlowsCSV)}}, nil
}

// ingressChoices are the ROUTER:IFACE values the form offers: the
// uplinks first (where traffic from outside enters), then every other
// interface of every router.
func (s *Server) ingressChoices() []string {
	s.engineMu.Lock()
	out := slices.Clone(s.engine.Uplinks())
	s.engineMu.Unlock()
	for _, r := range s.cfg.Facts.Routers {
		for _, ifc := range r.Interfaces {
			if ifc.Kind == "loopback" || ifc.Name == "lo" {
				continue
			}
			if c := r.Name + ":" + ifc.Name; !slices.Contains(out, c) {
				out = append(out, c)
			}
		}
	}
	return out
}

func (s *Server) handleSubmit(w http.ResponseWriter, r *http.Request, sess session) {
	var req submitRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	plan, err := s.validateSubmit(&req)
	if err != nil {
		s.auditLog(r, "job_rejected", sess.user, false).Str("reason", err.Error()).Send()
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	m, pos, err := s.jobs.submit(sess.user, plan)
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
	s.auditLog(r, "job_submitted", sess.user, true).Str("job", m.ID).Str("src", m.Src).Str("dst", m.Dst).
		Str("services", m.Services).Int("flows", m.Flows).Bool("batch", m.Batch).Str("path_from", m.PathFrom).Send()
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
		if m.Batch && m.State == StateDone {
			v.Links["junit"] = "/api/jobs/" + m.ID + "/junit.xml"
		}
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

func (s *Server) handleJUnit(w http.ResponseWriter, r *http.Request, sess session) {
	m, ok := s.lookupJob(w, r, sess)
	if !ok {
		return
	}
	if !m.Batch {
		writeError(w, http.StatusConflict, "JUnit XML is made for flows-file jobs only")
		return
	}
	data, err := os.ReadFile(filepath.Join(s.jobs.dir(m.ID), junitFile))
	if err != nil {
		writeError(w, http.StatusConflict, "no JUnit XML for this job (it is "+m.State+")")
		return
	}
	w.Header().Set("Content-Type", "application/xml; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="tsim-%s.junit.xml"`, m.ID[:12]))
	w.Write(data)
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
