package hosts

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultRegistryDir is where lab records live.
const DefaultRegistryDir = "/run/tsim/labs"

// Item kinds in a record's creation log.
const (
	itemNetns = "netns"
	itemLink  = "link"
)

// Item is one thing a lab created, in creation order. It is recorded
// before it is created, so a crash leaves at most items that do not exist.
type Item struct {
	Kind  string `json:"kind"`            // netns | link
	Netns string `json:"netns,omitempty"` // link: namespace holding it
	Name  string `json:"name"`
}

// Record is a lab's registry entry, /run/tsim/labs/<id>.json.
type Record struct {
	ID         string    `json:"id"`
	OwnerPID   int       `json:"owner_pid"`
	OwnerStart uint64    `json:"owner_start"` // /proc/PID/stat starttime, survives pid reuse
	CreatorPID int       `json:"creator_pid"`
	Created    time.Time `json:"created"`
	Facts      string    `json:"facts,omitempty"`
	Digest     string    `json:"facts_digest,omitempty"`
	Complete   bool      `json:"complete"`
	Fabric     string    `json:"fabric,omitempty"`
	Routers    []string  `json:"routers"`
	Hosts      []string  `json:"hosts"`
	Items      []Item    `json:"items"`
	Label      string    `json:"label,omitempty"`
}

// Namespaces lists the record's namespaces in creation order.
func (r *Record) Namespaces() []string {
	var out []string
	for _, it := range r.Items {
		if it.Kind == itemNetns {
			out = append(out, it.Name)
		}
	}
	return out
}

// registry is one lab's open record: writes are serialised and atomic
// (temp file + rename), and the lab's lock file is held while it is open.
type registry struct {
	dir  string
	mu   sync.Mutex
	rec  Record
	lock *os.File
}

func recordPath(dir, id string) string { return filepath.Join(dir, id+".json") }
func lockPath(dir, id string) string   { return filepath.Join(dir, id+".lock") }

// newRegistry reserves a fresh lab id (its lock file is created with
// O_EXCL so two processes never get the same id) and writes the record.
func newRegistry(dir string, rec Record, newID func() string) (*registry, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create registry %s: %w", dir, err)
	}
	for range 20 {
		id := newID()
		f, err := os.OpenFile(lockPath(dir, id), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("create lab lock: %w", err)
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			f.Close()
			os.Remove(lockPath(dir, id))
			continue
		}
		rec.ID = id
		g := &registry{dir: dir, rec: rec, lock: f}
		if err := g.write(); err != nil {
			g.remove()
			return nil, err
		}
		return g, nil
	}
	return nil, fmt.Errorf("could not reserve a lab id in %s", dir)
}

// write stores the record atomically; callers hold mu or own g alone.
func (g *registry) write() error {
	b, err := json.MarshalIndent(&g.rec, "", "  ")
	if err != nil {
		return err
	}
	p := recordPath(g.dir, g.rec.ID)
	tmp := p + ".tmp"
	// Readable by all: `hosts ls` need not be root, and a record holds
	// nothing secret.
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write lab record: %w", err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return fmt.Errorf("write lab record: %w", err)
	}
	return nil
}

// intend records items about to be created.
func (g *registry) intend(items ...Item) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.rec.Items = append(g.rec.Items, items...)
	return g.write()
}

func (g *registry) update(f func(*Record)) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	f(&g.rec)
	return g.write()
}

func (g *registry) snapshot() Record {
	g.mu.Lock()
	defer g.mu.Unlock()
	r := g.rec
	r.Items = append([]Item(nil), g.rec.Items...)
	return r
}

// release closes the lock (the record stays: the lab lives on).
func (g *registry) release() {
	if g.lock != nil {
		g.lock.Close()
		g.lock = nil
	}
}

// remove deletes the record, then the lock file, then releases the lock.
func (g *registry) remove() {
	os.Remove(recordPath(g.dir, g.rec.ID))
	os.Remove(lockPath(g.dir, g.rec.ID))
	g.release()
}

// openLocked opens an existing lab's record with its lock held, or returns
// busy=true when another process holds the lock (it is being built or
// torn down right now).
func openLocked(dir, id string) (g *registry, busy bool, err error) {
	if !validID(id) {
		return nil, false, fmt.Errorf("invalid lab id %q", id)
	}
	f, err := os.OpenFile(lockPath(dir, id), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("open lab lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, true, nil
	}
	b, err := os.ReadFile(recordPath(dir, id))
	if err != nil {
		// A lock without a record: a lab removed meanwhile, or one that
		// crashed before its first write; nothing to tear down.
		os.Remove(lockPath(dir, id))
		f.Close()
		if errors.Is(err, os.ErrNotExist) {
			return nil, false, os.ErrNotExist
		}
		return nil, false, err
	}
	g = &registry{dir: dir, lock: f}
	if err := json.Unmarshal(b, &g.rec); err != nil {
		f.Close()
		return nil, false, fmt.Errorf("lab record %s: %w", recordPath(dir, id), err)
	}
	return g, false, nil
}

// readRecords reads every record in dir (unlocked; for listing).
func readRecords(dir string) ([]Record, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Record
	for _, e := range ents {
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || !validID(id) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		var r Record
		if json.Unmarshal(b, &r) == nil && r.ID == id {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out, nil
}

func validID(id string) bool {
	if len(id) < 4 || len(id) > 16 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
