package pdf

import (
	"strings"
	"testing"
	"unicode/utf8"

	"codeberg.org/go-pdf/fpdf"
)

func testCanvas(t testing.TB) *canvas {
	t.Helper()
	fd := loadFonts()
	if fd.err != nil {
		t.Fatal(fd.err)
	}
	f := fpdf.New("P", "mm", "A4", "")
	return newCanvas(f, fd)
}

// checkWrap asserts the wrapping invariants: no line wider than w (unless
// it is a single rune), and no character lost or reordered.
func checkWrap(t *testing.T, c *canvas, s string, w float64, fc face) []string {
	t.Helper()
	ls := c.wrap(s, w, fc)
	for _, l := range ls {
		if c.width(l, fc) > w+1e-6 && utf8.RuneCountInString(l) > 1 {
			t.Errorf("line %q is %.2f mm wide, limit %.2f", l, c.width(l, fc), w)
		}
	}
	if squash(strings.Join(ls, "")) != squash(c.clean(s, fc)) {
		t.Errorf("wrap lost text:\n in  %q\n out %q", s, ls)
	}
	return ls
}

func TestWrap(t *testing.T) {
	c := testCanvas(t)
	tests := []struct {
		s     string
		w     float64
		lines int
	}{
		{"short", 50, 1},
		{"", 50, 1},
		{"core-router-01.datacenter-frankfurt.example.net", 30, 4},
		{strings.Repeat("x", 200), 40, 0},
		{"-A FORWARD -m comment --comment \"Zugang für Büro → Rechenzentrum (café, Straße)\" -j ACCEPT", 60, 0},
		{"允许 HTTPS 流量 → 数据中心 路由器路由器路由器路由器路由器", 20, 0},
		{"a\nb", 50, 2},
	}
	for _, tc := range tests {
		ls := checkWrap(t, c, tc.s, tc.w, fMono)
		if tc.lines > 0 && len(ls) != tc.lines {
			t.Errorf("%q in %.0f mm: %d lines %q, want %d", tc.s, tc.w, len(ls), ls, tc.lines)
		}
	}
	// FQDNs break after a dot where one fits.
	ls := c.wrap("core-router-01.datacenter-frankfurt.example.net", 40, face{famSans, "B", 8})
	if !strings.HasSuffix(ls[0], ".") && !strings.HasSuffix(ls[0], "-") {
		t.Errorf("FQDN broke mid-label: %q", ls)
	}
}

func TestClean(t *testing.T) {
	c := testCanvas(t)
	tests := []struct {
		in, want string
		fc       face
	}{
		{"plain ASCII", "plain ASCII", fMono},
		{"0:\tfrom all lookup local", "0:      from all lookup local", fMono},
		{"32766:\tfrom all lookup main", "32766:  from all lookup main", fMono},
		{"12345678\tx", "12345678        x", fMono},
		{"a\tb\tc", "a       b       c", fBody},
		{"Zürich → 路由器", "Zürich → 路由器", fBody},                   // DejaVu, then the CJK fallback
		{"bell\x07 esc\x1b[0m", "bell\uFFFD esc\uFFFD[0m", fBody}, // control characters
		{"line\r\nnext", "line  next", fBody},
		{"fire \U0001F525!", "fire \uFFFD!", fBody}, // no embedded font has it
		{"clef \U0001D11E", "clef \uFFFD", fMono},
		{"bad \xff byte", "bad \uFFFD byte", fMono},
		{"already \uFFFD", "already \uFFFD", fMono},
	}
	for _, tc := range tests {
		if got := c.clean(tc.in, tc.fc); got != tc.want {
			t.Errorf("clean(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if again := c.clean(tc.want, tc.fc); again != tc.want {
			t.Errorf("clean is not idempotent on %q: %q", tc.want, again)
		}
	}
	// Every embedded face can draw the replacement character itself.
	for _, fc := range []face{fBody, fBodyB, fMono} {
		if !c.fonts.coverage[fc.fam+fc.style].has(missing) {
			t.Errorf("%s%s has no glyph for U+FFFD", fc.fam, fc.style)
		}
	}
}

func TestRunsUseFallbackOnlyForMissingGlyphs(t *testing.T) {
	c := testCanvas(t)
	rs := c.runs("Zürich → 路由器 gw", fBody)
	var got []string
	for _, r := range rs {
		got = append(got, r.fam+":"+r.text)
	}
	want := []string{famSans + ":Zürich → ", famFallback + ":路由器", famSans + ": gw"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("runs = %q, want %q", got, want)
	}
	if !c.fallback {
		t.Error("fallback font not registered after use")
	}
	c2 := testCanvas(t)
	c2.runs("plain ASCII and Ελληνικά", fBody)
	if c2.fallback {
		t.Error("fallback font registered for text DejaVu covers")
	}
}

func FuzzWrap(f *testing.F) {
	f.Add("core-router-01.datacenter-frankfurt.example.net", 30.0)
	f.Add("-A FORWARD -m comment --comment \"é ß →\" -j ACCEPT", 12.0)
	f.Add("路由器 Zürich", 3.0)
	c := testCanvas(f)
	f.Fuzz(func(t *testing.T, s string, w float64) {
		if !utf8.ValidString(s) || len(s) > 2000 || !(w >= 1 && w <= 300) {
			return
		}
		checkWrap(t, c, s, w, fMono)
	})
}

// FuzzClean: whatever the input, clean's output is valid UTF-8 that every
// rune of can be drawn (no tab, no control character, a glyph in the face
// or the fallback), and cleaning it again changes nothing.
func FuzzClean(f *testing.F) {
	f.Add("0:\tfrom all lookup local")
	f.Add("bell\x07 \xff \U0001F525 路由器 Zürich\r\n")
	c := testCanvas(f)
	fb := c.fonts.coverage[famFallback]
	f.Fuzz(func(t *testing.T, s string) {
		for _, fc := range []face{fBody, fBodyB, fMono} {
			out := c.clean(s, fc)
			if !utf8.ValidString(out) {
				t.Fatalf("clean(%q) = %q: invalid UTF-8", s, out)
			}
			for _, r := range out {
				if r < 0x20 || r == 0x7f || (r > 0x7e && !c.fonts.coverage[fc.fam+fc.style].has(r) && !fb.has(r)) {
					t.Fatalf("clean(%q) = %q keeps %U, which cannot be drawn", s, out, r)
				}
			}
			if again := c.clean(out, fc); again != out {
				t.Fatalf("clean not idempotent: %q → %q → %q", s, out, again)
			}
		}
	})
}
