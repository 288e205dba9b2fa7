package serve

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/flowtest"
	"github.com/tsim-dev/tsim/internal/fsx"
	"github.com/tsim-dev/tsim/internal/pipeline"
	"github.com/tsim-dev/tsim/internal/progress"
	"github.com/tsim-dev/tsim/trace"
)

// Job states (DESIGN §14).
const (
	StateQueued    = "queued"
	StateRunning   = "running"
	StateDone      = "done"
	StateFailed    = "failed"
	StateCancelled = "cancelled"
)

// Files of a job directory DATA/jobs/<id>/.
const (
	metaFile     = "job.json"
	documentFile = "document.json"
	reportFile   = "report.pdf"
	eventsFile   = "events.ndjson"
)

// validID: 32 lower-case hex digits is the only shape of job id accepted
// anywhere; ids are joined into paths, so nothing else may pass.
func validID(id string) bool {
	if len(id) != 32 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func terminal(state string) bool {
	return state == StateDone || state == StateFailed || state == StateCancelled
}

// jobEvent is one numbered progress event (the SSE id).
type jobEvent struct {
	ID int `json:"id"`
	progress.Event
	State string `json:"state,omitempty"` // set on state changes
	// Position is the queue position of a waiting job, sent again every
	// time it moves up.
	Position int `json:"queue_position,omitempty"`
	// Tests are a batch job's judged lines, sent once the probes answered.
	Tests []lineResult `json:"tests,omitempty"`
}

// jobMeta is job.json and the body of GET /api/jobs/{id}.
type jobMeta struct {
	ID          string     `json:"id"`
	State       string     `json:"state"`
	Progress    float64    `json:"progress"`
	Stage       string     `json:"stage,omitempty"`
	Message     string     `json:"message,omitempty"`
	Owner       string     `json:"owner"`
	Src         string     `json:"src"`
	Dst         string     `json:"dst"`
	Services    string     `json:"services"`
	SPort       int        `json:"sport,omitempty"`
	Flows       int        `json:"flows"`
	Created     time.Time  `json:"created"`
	Started     *time.Time `json:"started,omitempty"`
	Finished    *time.Time `json:"finished,omitempty"`
	Error       string     `json:"error,omitempty"`
	CancelledBy string     `json:"cancelled_by,omitempty"`
	Lab         string     `json:"lab,omitempty"`
	Report      bool       `json:"report"`
	Result      *jobResult `json:"result,omitempty"`
	// Batch jobs come from an uploaded flows file (flows.csv in the job
	// directory); PathFrom names the format of a path the user uploaded
	// (path.json in the job directory) when the simulation was skipped.
	Batch    bool         `json:"batch,omitempty"`
	Tests    []lineResult `json:"tests,omitempty"` // batch: one per line, PENDING until the probes answered
	PathFrom string       `json:"path_from,omitempty"`
	Ingress  string       `json:"ingress,omitempty"`
}

type job struct {
	meta    jobMeta
	events  []jobEvent
	changed chan struct{} // closed and replaced on every change
	cancel  context.CancelFunc
}

// jobs is the queue and the table of all kept jobs. One mutex guards it;
// nothing slow runs under it except the small job.json writes.
type jobs struct {
	s      *Server
	mu     sync.Mutex
	cond   *sync.Cond
	all    map[string]*job
	queue  []*job
	closed bool
}

func newJobs(s *Server) *jobs {
	js := &jobs{s: s, all: map[string]*job{}}
	js.cond = sync.NewCond(&js.mu)
	return js
}

func (js *jobs) dir(id string) string { return filepath.Join(js.s.cfg.DataDir, "jobs", id) }

func newJobID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// load reads the jobs kept on disk. Jobs that were queued or running when
// the server stopped are marked failed: their lab went with the process
// (tsim hosts down --stale removes what a crash left).
func (js *jobs) load() error {
	root := filepath.Join(js.s.cfg.DataDir, "jobs")
	ents, err := os.ReadDir(root)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	js.mu.Lock()
	defer js.mu.Unlock()
	for _, e := range ents {
		if !e.IsDir() || !validID(e.Name()) {
			continue
		}
		data, err := os.ReadFile(filepath.Join(root, e.Name(), metaFile))
		if err != nil {
			js.s.log.Warn().Err(err).Str("job", e.Name()).Msg("skipping job without job.json")
			continue
		}
		j := &job{changed: make(chan struct{})}
		if err := json.Unmarshal(data, &j.meta); err != nil || j.meta.ID != e.Name() {
			js.s.log.Warn().Str("job", e.Name()).Msg("skipping job with a bad job.json")
			continue
		}
		if !terminal(j.meta.State) {
			j.events = readEvents(filepath.Join(root, e.Name(), eventsFile))
			now := js.s.cfg.Now()
			j.meta.State, j.meta.Error, j.meta.Finished = StateFailed, "the server stopped before the job finished", &now
			notRun(&j.meta)
			js.addEventLocked(j, progress.Event{Time: now, Stage: StateFailed, Message: j.meta.Error}, StateFailed)
			js.persistLocked(j)
			j.events = nil
		}
		js.all[j.meta.ID] = j
	}
	return nil
}

func readEvents(path string) []jobEvent {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []jobEvent
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var e jobEvent
		if json.Unmarshal(sc.Bytes(), &e) == nil && e.ID == len(out)+1 {
			out = append(out, e)
		}
	}
	return out
}

func (js *jobs) persistLocked(j *job) {
	data, _ := json.MarshalIndent(j.meta, "", "  ")
	if err := fsx.WriteFileAtomic(filepath.Join(js.dir(j.meta.ID), metaFile), append(data, '\n'), 0o600); err != nil {
		js.s.log.Error().Err(err).Str("job", j.meta.ID).Msg("cannot write job.json")
	}
}

// notifyLocked wakes every stream waiting on j.
func notifyLocked(j *job) {
	close(j.changed)
	j.changed = make(chan struct{})
}

// addEventLocked numbers e, appends it to memory and events.ndjson and
// wakes the streams.
func (js *jobs) addEventLocked(j *job, e progress.Event, state string) {
	if e.Time.IsZero() {
		e.Time = js.s.cfg.Now()
	}
	js.appendEventLocked(j, jobEvent{Event: e, State: state})
}

// appendEventLocked numbers and stores a prepared event.
func (js *jobs) appendEventLocked(j *job, je jobEvent) {
	e, state := je.Event, je.State
	if e.Time.IsZero() {
		e.Time = js.s.cfg.Now()
		je.Event = e
	}
	je.ID = len(j.events) + 1
	j.events = append(j.events, je)
	if state == "" {
		j.meta.Progress, j.meta.Stage, j.meta.Message = e.Percent, e.Stage, e.Message
	}
	if line, err := json.Marshal(je); err == nil {
		if f, err := os.OpenFile(filepath.Join(js.dir(j.meta.ID), eventsFile), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600); err == nil {
			f.Write(append(line, '\n'))
			f.Close()
		}
	}
	notifyLocked(j)
}

// errLimit is a refused submission (queue or per-user limit).
type errLimit struct {
	status int
	msg    string
}

func (e *errLimit) Error() string { return e.msg }

// submit creates and queues a job for a validated plan.
func (js *jobs) submit(owner string, plan *jobPlan) (*jobMeta, int, error) {
	id, err := newJobID()
	if err != nil {
		return nil, 0, err
	}
	js.mu.Lock()
	defer js.mu.Unlock()
	if js.closed {
		return nil, 0, &errLimit{503, "the server is shutting down"}
	}
	if len(js.queue) >= js.s.cfg.MaxQueued {
		return nil, 0, &errLimit{503, fmt.Sprintf("the queue is full (%d jobs waiting); try again later", len(js.queue))}
	}
	pending := 0
	for _, j := range js.all {
		if j.meta.Owner == owner && !terminal(j.meta.State) {
			pending++
		}
	}
	if pending >= js.s.cfg.MaxPerUser {
		return nil, 0, &errLimit{429, fmt.Sprintf("you have %d unfinished jobs (limit %d); wait for one to finish", pending, js.s.cfg.MaxPerUser)}
	}
	if err := os.Mkdir(js.dir(id), 0o700); err != nil {
		return nil, 0, err
	}
	for name, data := range plan.files {
		if err := fsx.WriteFileAtomic(filepath.Join(js.dir(id), name), data, 0o600); err != nil {
			os.RemoveAll(js.dir(id))
			return nil, 0, err
		}
	}
	now := js.s.cfg.Now()
	meta := plan.meta
	meta.ID, meta.State, meta.Owner, meta.Created = id, StateQueued, owner, now
	j := &job{changed: make(chan struct{}), meta: meta}
	js.all[id] = j
	js.queue = append(js.queue, j)
	js.appendEventLocked(j, jobEvent{Event: progress.Event{Time: now, Stage: StateQueued,
		Message: fmt.Sprintf("queued at position %d", len(js.queue))}, State: StateQueued, Position: len(js.queue)})
	js.persistLocked(j)
	js.cond.Signal()
	m := j.meta
	return &m, len(js.queue), nil
}

// next blocks until a job is queued (nil when shutting down).
func (js *jobs) next() *job {
	js.mu.Lock()
	defer js.mu.Unlock()
	for len(js.queue) == 0 && !js.closed {
		js.cond.Wait()
	}
	if js.closed {
		return nil
	}
	j := js.queue[0]
	js.queue = js.queue[1:]
	js.movedUpLocked(0)
	return j
}

// movedUpLocked tells every queued job from index i on its new position
// (an event on its stream).
func (js *jobs) movedUpLocked(i int) {
	for k := i; k < len(js.queue); k++ {
		q := js.queue[k]
		js.appendEventLocked(q, jobEvent{Event: progress.Event{Stage: StateQueued,
			Message: fmt.Sprintf("queued at position %d", k+1)}, State: StateQueued, Position: k + 1})
	}
}

func (js *jobs) worker() {
	for {
		j := js.next()
		if j == nil {
			return
		}
		js.run(j)
	}
}

// shutdown stops the workers and cancels every unfinished job.
func (js *jobs) shutdown() {
	js.mu.Lock()
	defer js.mu.Unlock()
	js.closed = true
	now := js.s.cfg.Now()
	for _, j := range js.queue {
		js.finishLocked(j, StateCancelled, "the server shut down before the job started", now)
	}
	js.queue = nil
	for _, j := range js.all {
		if j.cancel != nil && j.meta.State == StateRunning {
			j.cancel()
		}
	}
	js.cond.Broadcast()
}

// notRun marks the lines of a batch job that ended before its probes
// answered. It makes a new slice: copies of the metadata handed out
// earlier share the old one.
func notRun(m *jobMeta) {
	tests := slices.Clone(m.Tests)
	for i := range tests {
		if tests[i].Result == "PENDING" {
			tests[i].Result = "NOT RUN"
		}
	}
	m.Tests = tests
}

func (js *jobs) finishLocked(j *job, state, msg string, now time.Time) {
	j.meta.State, j.meta.Error, j.meta.Finished = state, msg, &now
	notRun(&j.meta)
	if state == StateDone {
		j.meta.Progress = 100
	}
	text := msg
	if text == "" {
		text = "finished"
	}
	js.addEventLocked(j, progress.Event{Time: now, Stage: state, Percent: j.meta.Progress, Message: text}, state)
	js.persistLocked(j)
	// A finished job's events are only replayed from events.ndjson, so
	// memory does not grow with the retention period.
	j.events = nil
}

// run executes one job through the pipeline.
func (js *jobs) run(j *job) {
	cfg := &js.s.cfg
	js.mu.Lock()
	if j.meta.State != StateQueued {
		js.mu.Unlock()
		return
	}
	ctx, cancel := context.WithTimeout(js.s.ctx, cfg.JobTimeout)
	defer cancel()
	started := cfg.Now()
	j.cancel = cancel
	j.meta.State, j.meta.Started = StateRunning, &started
	js.addEventLocked(j, progress.Event{Time: started, Stage: StateRunning, Message: "started"}, StateRunning)
	js.persistLocked(j)
	m := j.meta
	js.mu.Unlock()

	log := js.s.log.With().Str("job", m.ID).Str("owner", m.Owner).Logger()
	dir := js.dir(m.ID)
	// A batch job's lines are judged as soon as the probes answered, so the
	// page shows PASS/FAIL while the PDF is still being drawn.
	reached := func(docs []*doc.Document) {
		if !m.Batch {
			return
		}
		cases, file, err := judgeBatch(dir, docs)
		if err != nil {
			log.Error().Err(err).Msg("judging the flows file")
			return
		}
		tests := testsOf(cases, file)
		sum := flowtest.Summarize(cases)
		js.mu.Lock()
		defer js.mu.Unlock()
		if j.meta.State == StateRunning {
			j.meta.Tests = tests
			js.persistLocked(j)
			js.appendEventLocked(j, jobEvent{Event: progress.Event{Stage: "reach", Percent: j.meta.Progress,
				Message: "tests: " + sum.String()}, Tests: tests})
		}
	}
	res, err := js.execute(ctx, m, dir, reached, progress.Func(func(e progress.Event) {
		e.Message, e.Step = scrubPaths(e.Message), scrubPaths(e.Step)
		js.mu.Lock()
		defer js.mu.Unlock()
		if j.meta.State == StateRunning {
			js.addEventLocked(j, e, "")
		}
	}), log)

	js.mu.Lock()
	defer js.mu.Unlock()
	j.cancel = nil
	if res != nil {
		j.meta.Lab = res.LabID
		if len(res.Docs) > 0 {
			j.meta.Result = summarize(res.Docs, cfg.Facts)
			if werr := writeDocs(filepath.Join(dir, documentFile), res.Docs); werr != nil && err == nil {
				err = werr
			}
			if m.Batch && err == nil {
				if werr := js.finishBatch(j, dir, res); werr != nil {
					err = werr
				}
			}
		}
	}
	if st, serr := os.Stat(filepath.Join(dir, reportFile)); serr == nil && st.Size() > 0 {
		j.meta.Report = true
	}
	now := cfg.Now()
	switch {
	case j.meta.CancelledBy != "":
		js.finishLocked(j, StateCancelled, "cancelled by "+j.meta.CancelledBy, now)
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		js.finishLocked(j, StateFailed, fmt.Sprintf("the job exceeded its time limit of %s", cfg.JobTimeout), now)
	case js.s.ctx.Err() != nil:
		js.finishLocked(j, StateCancelled, "the server shut down while the job ran", now)
	case err != nil:
		js.finishLocked(j, StateFailed, scrubPaths(err.Error()), now)
	default:
		js.finishLocked(j, StateDone, "", now)
	}
	log.Info().Str("state", j.meta.State).Str("error", j.meta.Error).Msg("job finished")
	js.s.audit.Log().Str("action", "job_finished").Str("user", m.Owner).Str("job", m.ID).
		Str("state", j.meta.State).Bool("success", j.meta.State == StateDone).Send()
}

// execute builds the flows again (they were validated at submission) and
// calls the pipeline; a panic in it fails the job, not the server.
func (js *jobs) execute(ctx context.Context, m jobMeta, dir string, reached func([]*doc.Document), sink progress.Sink, log zerolog.Logger) (res *pipeline.Result, err error) {
	defer func() {
		if p := recover(); p != nil {
			log.Error().Interface("panic", p).Msg("pipeline panicked")
			res, err = nil, fmt.Errorf("internal error: %v", p)
		}
	}()
	cfg := &js.s.cfg
	groups, given, err := jobFlows(m, dir)
	if err != nil {
		return nil, err
	}
	req := pipeline.Request{Facts: cfg.Facts, Groups: groups, Given: given, Output: filepath.Join(dir, reportFile),
		Paper: cfg.Paper, Now: cfg.Now(), ProbeTimeout: cfg.ProbeTimeout, Scope: cfg.Scope, Registry: cfg.Registry,
		Label: labLabel(m.ID)}
	return cfg.Runner(ctx, req, pipeline.Deps{Pool: cfg.Pool, Progress: sink, Log: log, Reached: reached})
}

// finishBatch judges the lines of a finished batch job and writes its
// JUnit XML.
func (js *jobs) finishBatch(j *job, dir string, res *pipeline.Result) error {
	cases, file, err := judgeBatch(dir, res.Docs)
	if err != nil {
		return err
	}
	j.meta.Tests = testsOf(cases, file)
	sum := flowtest.Summarize(cases)
	r := j.meta.Result
	r.Passed, r.Failed, r.Unknown, r.NoExpect = sum.Passed, sum.Failed, sum.Unknown, sum.NoExpect
	r.Summary += "; " + sum.String()
	started := j.meta.Created
	if j.meta.Started != nil {
		started = *j.meta.Started
	}
	var ref *doc.FactsRef
	if len(res.Docs) > 0 {
		ref = res.Docs[0].Facts
	}
	return writeJUnit(dir, j.meta.ID, cases, ref, res.LabID, started, js.s.cfg.Now())
}

// jobFlows builds a job's flows again from its metadata and the files
// of its directory (all validated at submission): one group per line of
// a flows file, or one group with the user's path as its traces.
func jobFlows(m jobMeta, dir string) ([][]*doc.Flow, [][]*doc.Trace, error) {
	if m.Batch {
		data, err := os.ReadFile(filepath.Join(dir, flowsFile))
		if err != nil {
			return nil, nil, err
		}
		file, err := readFlows(data)
		if err != nil {
			return nil, nil, err
		}
		return groupsOf(file), nil, nil
	}
	flows, err := trace.FlowsFromSpec(m.Src, m.Dst, m.Services, m.SPort)
	if err != nil {
		return nil, nil, err
	}
	if m.PathFrom != "" {
		data, err := os.ReadFile(filepath.Join(dir, pathFile))
		if err != nil {
			return nil, nil, err
		}
		var up userPath
		if err := json.Unmarshal(data, &up); err != nil {
			return nil, nil, fmt.Errorf("the uploaded path: %w", err)
		}
		return [][]*doc.Flow{flows}, [][]*doc.Trace{up.traces(flows)}, nil
	}
	for _, fl := range flows {
		fl.Ingress = m.Ingress
	}
	return [][]*doc.Flow{flows}, nil, nil
}

// writeDocs keeps the documents users download; the report paths in them
// are the file names only (where the server keeps files is not theirs).
func writeDocs(path string, docs []*doc.Document) error {
	var buf bytes.Buffer
	for _, d := range docs {
		if d.Report != nil {
			d.Report.PDF = filepath.Base(d.Report.PDF)
		}
		if d.Merged != nil {
			d.Merged.PDF = filepath.Base(d.Merged.PDF)
		}
		for _, e := range d.Errors {
			e.Message = scrubPaths(e.Message)
		}
		if err := doc.Write(&buf, d); err != nil {
			return err
		}
	}
	return fsx.WriteFileAtomic(path, buf.Bytes(), 0o600)
}

// noteReaped records on a kept job that its lab was left behind by a
// crash and removed at start-up.
func (js *jobs) noteReaped(id, lab string) {
	js.mu.Lock()
	defer js.mu.Unlock()
	j := js.all[id]
	if j == nil {
		return
	}
	j.meta.Lab = lab
	j.meta.Error = strings.TrimSpace(j.meta.Error + "; its lab " + lab + " was removed when the server started again")
	js.persistLocked(j)
}

// get returns a copy of the job's metadata.
func (js *jobs) get(id string) (jobMeta, bool) {
	js.mu.Lock()
	defer js.mu.Unlock()
	j, ok := js.all[id]
	if !ok {
		return jobMeta{}, false
	}
	return j.meta, true
}

// position is the 1-based queue position (0 when not queued).
func (js *jobs) position(id string) int {
	js.mu.Lock()
	defer js.mu.Unlock()
	for i, j := range js.queue {
		if j.meta.ID == id {
			return i + 1
		}
	}
	return 0
}

// since returns the events after last, a channel closed on the next
// change, and whether the job has finished.
func (js *jobs) since(id string, last int) ([]jobEvent, <-chan struct{}, bool) {
	js.mu.Lock()
	j := js.all[id]
	if j == nil {
		js.mu.Unlock()
		return nil, nil, true
	}
	evs, changed, done := j.events, j.changed, terminal(j.meta.State)
	if done {
		js.mu.Unlock()
		evs = readEvents(filepath.Join(js.dir(id), eventsFile))
	} else {
		defer js.mu.Unlock()
	}
	var out []jobEvent
	if last < len(evs) {
		out = append(out, evs[max(last, 0):]...)
	}
	return out, changed, done
}

// list returns the jobs of owner ("" = everyone), newest first.
func (js *jobs) list(owner string) []jobMeta {
	js.mu.Lock()
	defer js.mu.Unlock()
	out := []jobMeta{}
	for _, j := range js.all {
		if owner == "" || j.meta.Owner == owner {
			out = append(out, j.meta)
		}
	}
	sortNewest(out)
	return out
}

// cancel cancels a queued or running job. It returns false when the job
// had already finished.
func (js *jobs) cancelJob(id, by string) (bool, error) {
	js.mu.Lock()
	defer js.mu.Unlock()
	j := js.all[id]
	if j == nil {
		return false, errors.New("no such job")
	}
	switch j.meta.State {
	case StateQueued:
		for i, q := range js.queue {
			if q == j {
				js.queue = append(js.queue[:i:i], js.queue[i+1:]...)
				js.movedUpLocked(i)
				break
			}
		}
		j.meta.CancelledBy = by
		js.finishLocked(j, StateCancelled, "cancelled by "+by+" before it started", js.s.cfg.Now())
		return true, nil
	case StateRunning:
		if j.meta.CancelledBy == "" {
			j.meta.CancelledBy = by
			js.addEventLocked(j, progress.Event{Stage: j.meta.Stage, Percent: j.meta.Progress, Message: "cancelling: removing the lab"}, "")
			if j.cancel != nil {
				j.cancel()
			}
		}
		return true, nil
	}
	return false, nil
}

// sweep deletes finished jobs older than the retention period.
func (js *jobs) sweep() {
	cut := js.s.cfg.Now().Add(-js.s.cfg.Retention)
	js.mu.Lock()
	var old []string
	for id, j := range js.all {
		if terminal(j.meta.State) && j.meta.Finished != nil && j.meta.Finished.Before(cut) {
			old = append(old, id)
			delete(js.all, id)
		}
	}
	js.mu.Unlock()
	for _, id := range old {
		if !validID(id) {
			continue
		}
		if err := os.RemoveAll(js.dir(id)); err != nil {
			js.s.log.Error().Err(err).Str("job", id).Msg("retention: cannot remove")
			continue
		}
		js.s.audit.Log().Str("action", "job_expired").Str("job", id).Bool("success", true).Send()
	}
}

func sortNewest(ms []jobMeta) {
	sort.Slice(ms, func(i, j int) bool {
		if !ms[i].Created.Equal(ms[j].Created) {
			return ms[i].Created.After(ms[j].Created)
		}
		return ms[i].ID < ms[j].ID
	})
}

// labLabel is the label of a job's lab in the lab registry; jobOfLab
// reads it back (the admin page and start-up reaping match labs to jobs).
func labLabel(id string) string { return "serve:" + id }

func jobOfLab(label string) string {
	if id, ok := strings.CutPrefix(label, "serve:"); ok && validID(id) {
		return id
	}
	return ""
}

// absPath is an absolute file path inside a message.
var absPath = regexp.MustCompile(`(^|[\s"'(=:,])(/[^\s"'(),:;]+)`)

// scrubPaths replaces absolute paths in a message shown to users by their
// last element: where the server keeps its files is not their business
// ("merge: /srv/tsim/jobs/…/report.pdf: 3 pages" -> "merge: report.pdf: 3 pages").
func scrubPaths(msg string) string {
	if !strings.Contains(msg, "/") {
		return msg
	}
	return absPath.ReplaceAllStringFunc(msg, func(m string) string {
		i := strings.IndexByte(m, '/')
		return m[:i] + filepath.Base(m[i:])
	})
}
