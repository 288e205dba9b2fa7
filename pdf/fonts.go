package pdf

import (
	"embed"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"sync"
)

// The fonts ship inside the binary so a report renders the same on every
// machine: DejaVu covers Latin, Greek, Cyrillic, arrows and box drawing;
// Droid Sans Fallback covers CJK and is only embedded in a PDF whose text
// needs it (fpdf subsets both to the glyphs used).
//
//go:embed fonts/DejaVuSans.ttf fonts/DejaVuSans-Bold.ttf fonts/DejaVuSansMono.ttf fonts/DroidSansFallbackFull.ttf
var fontFS embed.FS

// Font families as registered with fpdf.
const (
	famSans     = "dejavu"
	famMono     = "dejavumono"
	famFallback = "droidfallback"
)

// fontFile describes one embedded font: its fpdf family and style.
type fontFile struct {
	family, style, path string
}

var fontFiles = []fontFile{
	{famSans, "", "fonts/DejaVuSans.ttf"},
	{famSans, "B", "fonts/DejaVuSans-Bold.ttf"},
	{famMono, "", "fonts/DejaVuSansMono.ttf"},
	{famFallback, "", "fonts/DroidSansFallbackFull.ttf"},
}

// fontData is the parsed, read-only font set shared by every report.
type fontData struct {
	bytes    map[string][]byte  // family+style -> TTF bytes
	coverage map[string]runeSet // family+style -> covered runes
	err      error
}

// loadFonts parses the embedded fonts once; the result is immutable, so
// sharing it between concurrent reports is safe.
var loadFonts = sync.OnceValue(func() *fontData {
	fd := &fontData{bytes: map[string][]byte{}, coverage: map[string]runeSet{}}
	for _, ff := range fontFiles {
		b, err := fontFS.ReadFile(ff.path)
		if err != nil {
			fd.err = fmt.Errorf("embedded font %s: %w", ff.path, err)
			return fd
		}
		cov, err := parseCmap(b)
		if err != nil {
			fd.err = fmt.Errorf("embedded font %s: %w", ff.path, err)
			return fd
		}
		fd.bytes[ff.family+ff.style] = b
		fd.coverage[ff.family+ff.style] = cov
	}
	return fd
})

// runeSet is a sorted list of inclusive rune ranges.
type runeSet [][2]rune

func (s runeSet) has(r rune) bool {
	i := sort.Search(len(s), func(i int) bool { return s[i][1] >= r })
	return i < len(s) && s[i][0] <= r
}

// parseCmap reads the Unicode ranges a TrueType font maps to glyphs, from
// its cmap table (format 12 preferred, else format 4).
func parseCmap(b []byte) (runeSet, error) {
	u16 := func(o int) int { return int(binary.BigEndian.Uint16(b[o:])) }
	u32 := func(o int) int { return int(binary.BigEndian.Uint32(b[o:])) }
	bad := errors.New("malformed TrueType cmap")
	if len(b) < 12 {
		return nil, bad
	}
	n := u16(4)
	cmap := -1
	for i := 0; i < n; i++ {
		rec := 12 + 16*i
		if rec+16 > len(b) {
			return nil, bad
		}
		if string(b[rec:rec+4]) == "cmap" {
			cmap = u32(rec + 8)
		}
	}
	if cmap < 0 || cmap+4 > len(b) {
		return nil, errors.New("TrueType font without cmap table")
	}
	var f4, f12 int = -1, -1
	for i := 0; i < u16(cmap+2); i++ {
		rec := cmap + 4 + 8*i
		if rec+8 > len(b) {
			return nil, bad
		}
		pid, eid, off := u16(rec), u16(rec+2), cmap+u32(rec+4)
		if off+2 > len(b) {
			return nil, bad
		}
		switch format := u16(off); {
		case format == 12 && (pid == 3 && eid == 10 || pid == 0):
			f12 = off
		case format == 4 && (pid == 3 && eid == 1 || pid == 0):
			f4 = off
		}
	}
	var set runeSet
	switch {
	case f12 >= 0:
		groups := u32(f12 + 12)
		if f12+16+12*groups > len(b) {
			return nil, bad
		}
		for g := 0; g < groups; g++ {
			o := f12 + 16 + 12*g
			set = append(set, [2]rune{rune(u32(o)), rune(u32(o + 4))})
		}
	case f4 >= 0:
		segs := u16(f4+6) / 2
		ends, starts := f4+14, f4+16+2*segs
		if starts+2*segs > len(b) {
			return nil, bad
		}
		for s := 0; s < segs; s++ {
			lo, hi := u16(starts+2*s), u16(ends+2*s)
			if lo == 0xFFFF {
				continue
			}
			set = append(set, [2]rune{rune(lo), rune(hi)})
		}
	default:
		return nil, errors.New("TrueType font without a Unicode cmap")
	}
	sort.Slice(set, func(i, j int) bool { return set[i][0] < set[j][0] })
	return set, nil
}
