package pdf

import (
	"bytes"
	"strings"
	"unicode"
	"unicode/utf8"

	"codeberg.org/go-pdf/fpdf"
)

// face is a font choice: family, style ("" or "B") and size in points.
type face struct {
	fam   string
	style string
	size  float64
}

// mm converts the face's point size to millimetres (the page unit).
func (fc face) mm() float64 { return fc.size * 25.4 / 72 }

// lineH is the distance between baselines of consecutive lines.
func (fc face) lineH() float64 { return fc.mm() * 1.22 }

// canvas wraps fpdf with text that falls back to a CJK font per rune and
// wraps without ever dropping a character.
type canvas struct {
	f        *fpdf.Fpdf
	fonts    *fontData
	fallback bool // fallback font registered with fpdf
	widths   map[string]map[rune]float64
}

func newCanvas(f *fpdf.Fpdf, fd *fontData) *canvas {
	for _, ff := range fontFiles {
		if ff.family == famFallback {
			continue // registered on first use: it is large
		}
		// fpdf writes into the font bytes while subsetting: give it a copy
		// so the shared original stays pristine and output reproducible.
		f.AddUTF8FontFromBytes(ff.family, ff.style, bytes.Clone(fd.bytes[ff.family+ff.style]))
	}
	return &canvas{f: f, fonts: fd, widths: map[string]map[rune]float64{}}
}

// run is a piece of text drawn with one font.
type run struct {
	fam, style, text string
}

// runs splits s into pieces by the font that has their glyphs.
func (c *canvas) runs(s string, fc face) []run {
	primary := c.fonts.coverage[fc.fam+fc.style]
	fb := c.fonts.coverage[famFallback]
	var out []run
	start, cur := 0, ""
	for i, r := range s {
		want := fc.fam
		if r > 0x7e && !primary.has(r) && fb.has(r) {
			want = famFallback
		}
		if i == 0 {
			cur = want
			continue
		}
		if want != cur {
			out = append(out, c.mkRun(cur, fc.style, s[start:i]))
			start, cur = i, want
		}
	}
	if start < len(s) {
		out = append(out, c.mkRun(cur, fc.style, s[start:]))
	}
	return out
}

func (c *canvas) mkRun(fam, style, text string) run {
	if fam == famFallback {
		if !c.fallback {
			c.f.AddUTF8FontFromBytes(famFallback, "", bytes.Clone(c.fonts.bytes[famFallback]))
			c.fallback = true
		}
		style = "" // the fallback has no bold face
	}
	return run{fam, style, text}
}

// tabWidth is the distance between tab stops, in characters (as a terminal
// shows `ip rule` output).
const tabWidth = 8

// missing is drawn in place of a character no embedded font has a glyph
// for, and of control characters: the Unicode replacement character, which
// DejaVu has, so the reader sees that something was replaced (a font's
// .notdef box would look like a rendering fault).
const missing = '\uFFFD'

// clean makes s drawable as it reads: tabs become spaces up to the next tab
// stop, line breaks become spaces (text draws one line; wrap splits lines
// before it cleans them), and control characters, invalid UTF-8 and
// characters without a glyph in fc's font or the fallback become U+FFFD.
// Printable ASCII passes unchanged without allocating.
func (c *canvas) clean(s string, fc face) string {
	i := 0
	for i < len(s) && s[i] >= 0x20 && s[i] < 0x7f {
		i++
	}
	if i == len(s) {
		return s
	}
	primary := c.fonts.coverage[fc.fam+fc.style]
	fb := c.fonts.coverage[famFallback]
	drawable := func(r rune) bool {
		return r >= 0x20 && r < 0x7f ||
			r > 0x7e && !unicode.IsControl(r) && (primary.has(r) || fb.has(r))
	}
	clean := utf8.ValidString(s[i:]) // invalid bytes read as U+FFFD below
	for _, r := range s[i:] {
		if !clean || !drawable(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	b.WriteString(s[:i])
	col := i // characters since the start of s
	for _, r := range s[i:] {
		switch {
		case r == '\t':
			n := tabWidth - col%tabWidth
			b.WriteString("        "[:n])
			col += n
			continue
		case r == '\n' || r == '\r':
			r = ' '
		case !drawable(r):
			r = missing
		}
		b.WriteRune(r)
		col++
	}
	return b.String()
}

// width is the rendered width of s in mm: the sum of its glyph advances
// (fpdf does not kern), each looked up once per font and cached.
func (c *canvas) width(s string, fc face) float64 {
	return c.cleanWidth(c.clean(s, fc), fc)
}

// cleanWidth is width for text clean has already made drawable.
func (c *canvas) cleanWidth(s string, fc face) float64 {
	w := 0.0
	for _, r := range s {
		w += c.runeWidth(r, fc)
	}
	return w
}

// runeWidth is the advance of r at fc, in mm.
func (c *canvas) runeWidth(r rune, fc face) float64 {
	key := fc.fam + fc.style
	m := c.widths[key]
	if m == nil {
		m = map[rune]float64{}
		c.widths[key] = m
	}
	w1, ok := m[r] // width at 1 pt
	if !ok {
		for _, rn := range c.runs(string(r), face{fc.fam, fc.style, 1}) {
			c.f.SetFont(rn.fam, rn.style, 100)
			w1 += c.f.GetStringWidth(rn.text) / 100
		}
		m[r] = w1
	}
	return w1 * fc.size
}

// text draws s with its top-left corner at (x, top).
func (c *canvas) text(x, top float64, s string, fc face) {
	c.draw(x, top, c.clean(s, fc), fc)
}

// draw is text without cleaning: for tsim's own strings that must reach
// fpdf as they are (the page-count alias).
func (c *canvas) draw(x, top float64, s string, fc face) {
	base := top + fc.mm()*0.82
	for _, r := range c.runs(s, fc) {
		c.f.SetFont(r.fam, r.style, fc.size)
		c.f.Text(x, base, r.text)
		x += c.f.GetStringWidth(r.text)
	}
}

// textRight draws s right-aligned to x.
func (c *canvas) textRight(x, top float64, s string, fc face) {
	c.text(x-c.width(s, fc), top, s, fc)
}

// textCenter draws s centred on cx.
func (c *canvas) textCenter(cx, top float64, s string, fc face) {
	c.text(cx-c.width(s, fc)/2, top, s, fc)
}

// lines draws pre-wrapped lines starting at top and returns the y below them.
func (c *canvas) lines(x, top float64, ls []string, fc face) float64 {
	for _, l := range ls {
		c.text(x, top, l, fc)
		top += fc.lineH()
	}
	return top
}

// wrap breaks s into lines no wider than w: at spaces where it can, inside
// a word (preferring after . - / , : =) where a word alone is too wide.
// Joining the lines gives back every character of s (cleaned: see clean)
// except the spaces the breaks replaced; nothing is cut.
func (c *canvas) wrap(s string, w float64, fc face) []string {
	var out []string
	for _, para := range strings.Split(s, "\n") {
		out = append(out, c.wrapPara(c.clean(para, fc), w, fc)...)
	}
	return out
}

func (c *canvas) wrapPara(s string, w float64, fc face) []string {
	if c.cleanWidth(s, fc) <= w {
		return []string{s}
	}
	var out []string
	line := ""
	for _, word := range strings.Split(s, " ") {
		cand := word
		if line != "" {
			cand = line + " " + word
		}
		if c.cleanWidth(cand, fc) <= w {
			line = cand
			continue
		}
		if line != "" {
			out = append(out, line)
			line = ""
		}
		for c.cleanWidth(word, fc) > w {
			head, tail := c.breakWord(word, w, fc)
			out = append(out, head)
			word = tail
		}
		line = word
	}
	return append(out, line)
}

// breakWord splits a word too wide for w into a head that fits and the rest.
func (c *canvas) breakWord(word string, w float64, fc face) (string, string) {
	fit, soft := 0, 0 // byte offsets: last rune that fits, last soft break
	acc := 0.0
	for i, r := range word {
		end := i + utf8.RuneLen(r)
		if acc += c.runeWidth(r, fc); acc > w {
			break
		}
		fit = end
		if strings.ContainsRune(".-/,:=_|", r) {
			soft = end
		}
	}
	if fit == 0 { // not even one rune fits: take one anyway
		_, n := utf8.DecodeRuneInString(word)
		fit = n
	}
	if soft > fit/2 && soft < len(word) {
		fit = soft
	}
	return word[:fit], word[fit:]
}

// fitLines wraps s into at most maxLines lines of width w, shrinking the
// font from fc.size down to minSize; below that it wraps into more lines.
func (c *canvas) fitLines(s string, w float64, fc face, minSize float64, maxLines int) ([]string, face) {
	for size := fc.size; size >= minSize; size -= 0.5 {
		f := face{fc.fam, fc.style, size}
		if ls := c.wrap(s, w, f); len(ls) <= maxLines {
			return ls, f
		}
	}
	f := face{fc.fam, fc.style, minSize}
	return c.wrap(s, w, f), f
}
