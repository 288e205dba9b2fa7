package facts

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/tsim-dev/tsim/internal/example"
	"github.com/tsim-dev/tsim/internal/tsimerr"
)

// NormalizedFormat tags the single JSON file `tsim facts parse` writes.
const NormalizedFormat = "tsim-facts/v1"

// normalized is the on-disk wrapper of the normalized facts JSON.
type normalized struct {
	Format string `json:"format"`
	Facts  *Facts `json:"facts"`
}

// WriteNormalized writes f as tsim's normalized facts JSON; ReadNormalized
// gives back an equal Facts.
func WriteNormalized(w io.Writer, f *Facts) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(normalized{Format: NormalizedFormat, Facts: f}); err != nil {
		return fmt.Errorf("writing normalized facts: %w", err)
	}
	return nil
}

// ReadNormalized reads what WriteNormalized wrote, exactly.
func ReadNormalized(r io.Reader) (*Facts, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("reading normalized facts: %w", err)
	}
	return readNormalized("<normalized facts>", data)
}

func readNormalized(name string, data []byte) (*Facts, error) {
	var n normalized
	if err := json.Unmarshal(data, &n); err != nil {
		return nil, posErrorf(Pos{File: name}, "normalized facts: %v", jsonErr(data, err))
	}
	if n.Format != NormalizedFormat {
		return nil, posErrorf(Pos{File: name}, "normalized facts: format %q, want %q", n.Format, NormalizedFormat)
	}
	if n.Facts == nil || len(n.Facts.Routers) == 0 {
		return nil, posErrorf(Pos{File: name}, "normalized facts: no routers")
	}
	for i, r := range n.Facts.Routers {
		if r == nil || r.Name == "" {
			return nil, posErrorf(Pos{File: name}, "normalized facts: router %d has no name", i)
		}
	}
	return n.Facts, nil
}

// Load reads facts from path: "" is the built-in example; a directory of
// `<router>_facts.txt` raw files or of the predecessor's `<router>.json`
// files; or one file — tsim's normalized JSON, or a single raw or legacy
// router file. Every failure is an input error (exit 2) naming the
// problem, file:line where there is one.
func Load(ctx context.Context, p string) (*Facts, error) {
	f, err := load(ctx, p)
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return nil, err
		}
		return nil, tsimerr.Input(err)
	}
	return f, nil
}

// srcFile is one input file: its display path, its base name and bytes.
type srcFile struct {
	path, base string
	data       []byte
	read       func() ([]byte, error) // fills data when it is nil
}

func load(ctx context.Context, p string) (*Facts, error) {
	if p == "" {
		return loadBuiltin(ctx)
	}
	st, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("facts path %s does not exist", p)
		}
		return nil, fmt.Errorf("facts path: %w", err)
	}
	if !st.IsDir() {
		return loadFile(ctx, p)
	}
	ents, err := os.ReadDir(p)
	if err != nil {
		return nil, fmt.Errorf("facts directory: %w", err)
	}
	var raws, jsons []string
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		switch n := e.Name(); {
		case strings.HasSuffix(n, RawSuffix) && len(n) > len(RawSuffix):
			raws = append(raws, n)
		case strings.HasSuffix(n, ".json") && len(n) > len(".json"):
			jsons = append(jsons, n)
		}
	}
	format, names := "raw", raws
	if len(raws) == 0 {
		format, names = "json-legacy", jsons
	}
	if len(names) == 0 {
		if len(ents) == 0 {
			return nil, fmt.Errorf("facts directory %s is empty: expected <router>_facts.txt or <router>.json files", p)
		}
		return nil, fmt.Errorf("facts directory %s has no facts files: expected <router>_facts.txt or <router>.json files", p)
	}
	files := make([]srcFile, len(names))
	for i, n := range names {
		fp := filepath.Join(p, n)
		files[i] = srcFile{path: fp, base: n, read: func() ([]byte, error) { return os.ReadFile(fp) }}
	}
	facts, err := parseFiles(ctx, files, format)
	if err != nil {
		return nil, err
	}
	facts.Source = p
	if format == "raw" && len(jsons) > 0 {
		facts.Findings = append(facts.Findings, warnf(Pos{File: p}, "%d *.json files ignored: the directory holds raw facts files", len(jsons)))
	}
	return facts, nil
}

func loadBuiltin(ctx context.Context) (*Facts, error) {
	ents, err := fs.ReadDir(example.FS, "facts")
	if err != nil {
		return nil, fmt.Errorf("built-in example: %w", err)
	}
	var files []srcFile
	for _, e := range ents {
		if n := e.Name(); strings.HasSuffix(n, RawSuffix) {
			files = append(files, srcFile{path: "builtin:example/" + n, base: n,
				read: func() ([]byte, error) { return fs.ReadFile(example.FS, path.Join("facts", n)) }})
		}
	}
	if len(files) == 0 {
		return nil, errors.New("built-in example holds no facts files")
	}
	facts, err := parseFiles(ctx, files, "raw")
	if err != nil {
		return nil, err
	}
	facts.Source, facts.Format = "builtin:example", "builtin"
	return facts, nil
}

// loadFile reads one file: normalized JSON, or a single router file.
func loadFile(ctx context.Context, p string) (*Facts, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("facts file: %w", err)
	}
	files := []srcFile{{path: p, base: filepath.Base(p), data: data}}
	trim := bytes.TrimSpace(data)
	switch {
	case len(trim) > 0 && trim[0] == '{':
		var probe struct {
			Format string `json:"format"`
		}
		if json.Unmarshal(trim, &probe) == nil && probe.Format != "" {
			f, err := readNormalized(p, data)
			if err != nil {
				return nil, err
			}
			f.Source, f.Format, f.Digest = p, "normalized", digest(files)
			return f, nil
		}
		f, err := parseFiles(ctx, files, "json-legacy")
		if err != nil {
			return nil, err
		}
		f.Source = p
		return f, nil
	case bytes.Contains(data, []byte(markStart)):
		f, err := parseFiles(ctx, files, "raw")
		if err != nil {
			return nil, err
		}
		f.Source = p
		return f, nil
	}
	return nil, fmt.Errorf("%s is not a facts file: expected a directory of <router>_facts.txt or <router>.json files, or a normalized facts JSON file (tsim facts parse)", p)
}

// parseFiles reads (when needed) and parses every file into a router, in
// parallel on up to GOMAXPROCS goroutines. Parse errors of all files are merged into one ParseError so a
// checker can list them all.
func parseFiles(ctx context.Context, files []srcFile, format string) (*Facts, error) {
	sort.Slice(files, func(i, j int) bool { return files[i].base < files[j].base })
	routers := make([]*Router, len(files))
	finds := make([][]Finding, len(files))
	errs := make([]error, len(files))
	parse := func(ctx context.Context, i int) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		f := &files[i]
		if f.data == nil && f.read != nil {
			b, err := f.read()
			if err != nil {
				return fmt.Errorf("reading facts: %w", err)
			}
			f.data = b
		}
		if format == "raw" {
			routers[i], finds[i], errs[i] = ParseRaw(f.path, f.data)
		} else {
			routers[i], finds[i], errs[i] = ParseLegacyJSON(f.path, f.data)
		}
		return nil
	}
	// As many workers as Ps take the files in turn: a goroutine per file
	// would start (and grow the stack of) nine for the built-in example.
	// Even its nine small files load faster in parallel: in a fresh process
	// on two CPUs, 1.5 ms rather than 1.8.
	var next atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	for range min(runtime.GOMAXPROCS(0), len(files)) {
		g.Go(func() error {
			for i := int(next.Add(1) - 1); i < len(files); i = int(next.Add(1) - 1) {
				if err := parse(gctx, i); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := &Facts{Format: format, Digest: digest(files)}
	var bad ParseError
	for i := range files {
		out.Findings = append(out.Findings, finds[i]...)
		if errs[i] == nil {
			out.Routers = append(out.Routers, routers[i])
			continue
		}
		var pe *ParseError
		if errors.As(errs[i], &pe) {
			bad.Findings = append(bad.Findings, pe.Findings...)
		} else {
			bad.Findings = append(bad.Findings, Finding{Pos: Pos{File: files[i].path}, Severity: SevError, Message: errs[i].Error()})
		}
	}
	if len(bad.Findings) > 0 {
		return nil, &bad
	}
	sort.SliceStable(out.Routers, func(i, j int) bool { return out.Routers[i].Name < out.Routers[j].Name })
	for i := 1; i < len(out.Routers); i++ {
		if out.Routers[i].Name == out.Routers[i-1].Name {
			return nil, fmt.Errorf("router %s is defined twice (%s and %s)", out.Routers[i].Name, out.Routers[i-1].File, out.Routers[i].File)
		}
	}
	return out, nil
}

// digest is "sha256:" over the sorted base names and contents, each
// length-prefixed so different splits cannot collide.
func digest(files []srcFile) string {
	sorted := make([]srcFile, len(files))
	copy(sorted, files)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].base < sorted[j].base })
	h := sha256.New()
	for _, f := range sorted {
		fmt.Fprintf(h, "%d:%s\n%d:", len(f.base), f.base, len(f.data))
		h.Write(f.data)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}
