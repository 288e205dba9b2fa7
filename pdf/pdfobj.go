package pdf

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
)

// This file reads and writes PDF files at the object level, enough to merge
// the reports tsim writes itself (fpdf output: a classic xref table, no
// object or xref streams). It is not a general PDF library: merging used to
// link pdfcpu, whose package initialisation alone cost every tsim command
// about 2 ms of start-up (DESIGN §11 wants `tsim trace` under 10 ms).
// pdfcpu still validates every merged file in the tests.

// rawPDF is a parsed PDF: its objects by number and the trailer's entries.
type rawPDF struct {
	version int // minor version of the "%PDF-1.N" header
	objs    map[int]*rawObj
	root    int // catalog object
	info    int // info dictionary object, 0 if none
}

// rawObj is one object: the text after "N G obj" up to the stream keyword
// or endobj (dict), and the rest up to the next object (tail: stream data,
// "endstream", "endobj").
type rawObj struct {
	dict []byte
	tail []byte
}

var errNotClassic = errors.New("not a PDF written by tsim: it needs a classic xref table (no xref streams)")

// readPDF parses b. Offsets come from the last xref table; each object
// runs from its offset to the next object's (or to the xref table).
func readPDF(b []byte) (*rawPDF, error) {
	if !bytes.HasPrefix(b, []byte("%PDF-1.")) || len(b) < 8 {
		return nil, errors.New("no %PDF-1.x header")
	}
	p := &rawPDF{version: int(b[7] - '0'), objs: map[int]*rawObj{}}
	if p.version < 0 || p.version > 9 {
		return nil, errors.New("bad %PDF-1.x header")
	}
	xref := bytes.LastIndex(b, []byte("\nxref"))
	tr := bytes.LastIndex(b, []byte("\ntrailer"))
	if xref < 0 || tr < xref {
		return nil, errNotClassic
	}
	xref++
	table := b[xref+len("xref") : tr+1]
	type entry struct{ num, off int }
	var offs []entry
	for {
		table = bytes.TrimLeft(table, " \r\n")
		if len(table) == 0 {
			break
		}
		first, rest, ok1 := cutInt(table)
		count, rest, ok2 := cutInt(rest)
		if !ok1 || !ok2 || count < 0 {
			return nil, errors.New("malformed xref table")
		}
		table = bytes.TrimLeft(rest, " \r\n")
		for i := 0; i < count; i++ {
			if len(table) < 20 {
				return nil, errors.New("short xref table")
			}
			if table[17] == 'n' {
				off, err := strconv.Atoi(string(table[:10]))
				if err != nil {
					return nil, errors.New("malformed xref entry")
				}
				offs = append(offs, entry{first + i, off})
			}
			table = table[20:]
		}
	}
	slices.SortFunc(offs, func(a, b entry) int { return a.off - b.off })
	for i, e := range offs {
		end := xref
		if i+1 < len(offs) {
			end = offs[i+1].off
		}
		if e.off <= 0 || e.off > end || end > len(b) {
			return nil, errors.New("xref offset out of range")
		}
		body := b[e.off:end]
		num, rest, ok1 := cutInt(body)
		_, rest, ok2 := cutInt(rest)
		rest = bytes.TrimLeft(rest, " \r\n")
		if !ok1 || !ok2 || num != e.num || !bytes.HasPrefix(rest, []byte("obj")) {
			return nil, fmt.Errorf("object %d is not where the xref table says", e.num)
		}
		body = rest[len("obj"):]
		_, cut := scanRefs(body, true)
		p.objs[e.num] = &rawObj{dict: body[:cut], tail: body[cut:]}
	}
	trailer := b[tr+len("\ntrailer"):]
	var err error
	if p.root, err = dictRef(trailer, "Root"); err != nil || p.objs[p.root] == nil {
		return nil, errors.New("the trailer names no catalog")
	}
	if p.info, err = dictRef(trailer, "Info"); err != nil || p.objs[p.info] == nil {
		p.info = 0
	}
	return p, nil
}

// cutInt reads an unsigned decimal integer after optional white space.
func cutInt(b []byte) (int, []byte, bool) {
	b = bytes.TrimLeft(b, " \t\r\n\f")
	n, i := 0, 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		if n > 1<<40 {
			return 0, b, false
		}
		n = n*10 + int(b[i]-'0')
	}
	return n, b[i:], i > 0
}

// pages lists the page objects in order with the inheritable attributes
// (MediaBox, Resources, CropBox, Rotate) the page tree gives them, and the
// numbers of the page tree's inner nodes.
func (p *rawPDF) pages() (leaves []pageRef, nodes map[int]bool, err error) {
	pagesNum, err := dictRef(p.objs[p.root].dict, "Pages")
	if err != nil {
		return nil, nil, errors.New("the catalog has no page tree")
	}
	nodes = map[int]bool{}
	var walk func(n int, inherited map[string][]byte, depth int) error
	walk = func(n int, inherited map[string][]byte, depth int) error {
		o := p.objs[n]
		if o == nil || depth > 32 || nodes[n] {
			return errors.New("broken page tree")
		}
		ents, err := dictEntries(o.dict)
		if err != nil {
			return fmt.Errorf("object %d: %w", n, err)
		}
		attrs := map[string][]byte{}
		for k, v := range inherited {
			attrs[k] = v
		}
		var kids []byte
		typ := ""
		for _, e := range ents {
			switch e.key {
			case "MediaBox", "Resources", "CropBox", "Rotate":
				attrs[e.key] = e.val
			case "Kids":
				kids = e.val
			case "Type":
				typ = string(e.val)
			}
		}
		if typ != "/Pages" {
			leaves = append(leaves, pageRef{num: n, attrs: attrs})
			return nil
		}
		nodes[n] = true
		for _, r := range refsIn(kids) {
			if err := walk(r, attrs, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(pagesNum, nil, 0); err != nil {
		return nil, nil, err
	}
	return leaves, nodes, nil
}

// pageRef is a page object and the attributes it inherits from the tree.
type pageRef struct {
	num   int
	attrs map[string][]byte // own and inherited MediaBox, Resources, CropBox, Rotate
}

// dictEntry is one key and its value's text in a dictionary.
type dictEntry struct {
	key string
	val []byte
}

// dictEntries lists the top-level entries of the first dictionary in b.
func dictEntries(b []byte) ([]dictEntry, error) {
	i := bytes.Index(b, []byte("<<"))
	if i < 0 {
		return nil, errors.New("no dictionary")
	}
	i += 2
	var out []dictEntry
	for {
		i = skipSpace(b, i)
		if i >= len(b) {
			return nil, errors.New("unterminated dictionary")
		}
		if bytes.HasPrefix(b[i:], []byte(">>")) {
			return out, nil
		}
		if b[i] != '/' {
			return nil, errors.New("dictionary key is not a name")
		}
		k := tokenEnd(b, i)
		key := string(b[i+1 : k])
		v := skipSpace(b, k)
		end, err := objectEnd(b, v)
		if err != nil {
			return nil, err
		}
		out = append(out, dictEntry{key: key, val: bytes.TrimSpace(b[v:end])})
		i = end
	}
}

// dictRef reads the "N G R" value of key in the first dictionary of b.
func dictRef(b []byte, key string) (int, error) {
	ents, err := dictEntries(b)
	if err != nil {
		return 0, err
	}
	for _, e := range ents {
		if e.key == key {
			if r := refsIn(e.val); len(r) == 1 {
				return r[0], nil
			}
		}
	}
	return 0, fmt.Errorf("no %s reference", key)
}

// refsIn lists the object numbers referenced in b.
func refsIn(b []byte) []int {
	refs, _ := scanRefs(b, false)
	out := make([]int, 0, len(refs))
	for _, r := range refs {
		n, _ := strconv.Atoi(string(b[r[0]:r[1]]))
		out = append(out, n)
	}
	return out
}

// skipSpace skips white space and comments.
func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\r', '\n', '\f', 0:
			i++
		case '%':
			for i < len(b) && b[i] != '\n' && b[i] != '\r' {
				i++
			}
		default:
			return i
		}
	}
	return i
}

// tokenEnd returns the end of the regular token (name, number, keyword)
// starting at i; a name's leading '/' is part of it.
func tokenEnd(b []byte, i int) int {
	if i < len(b) && b[i] == '/' {
		i++
	}
	for i < len(b) && isRegular(b[i]) {
		i++
	}
	return i
}

// objectEnd returns the end of the direct object starting at i; "N G R"
// counts as one object.
func objectEnd(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, errors.New("missing value")
	}
	switch c := b[i]; {
	case c == '(':
		end, ok := stringEnd(b, i)
		if !ok {
			return 0, errors.New("unterminated string")
		}
		return end, nil
	case c == '<' && i+1 < len(b) && b[i+1] == '<', c == '[':
		closeTok := []byte(">>")
		open := 2
		if c == '[' {
			closeTok, open = []byte("]"), 1
		}
		i += open
		for {
			i = skipSpace(b, i)
			if i >= len(b) {
				return 0, errors.New("unterminated dictionary or array")
			}
			if bytes.HasPrefix(b[i:], closeTok) {
				return i + len(closeTok), nil
			}
			end, err := objectEnd(b, i)
			if err != nil {
				return 0, err
			}
			i = end
		}
	case c == '<':
		j := bytes.IndexByte(b[i:], '>')
		if j < 0 {
			return 0, errors.New("unterminated hex string")
		}
		return i + j + 1, nil
	case c == ')' || c == '>' || c == ']' || c == '{' || c == '}':
		return 0, fmt.Errorf("unexpected %q", c)
	}
	end := tokenEnd(b, i)
	if end == i {
		return 0, errors.New("empty token")
	}
	// An indirect reference "N G R" is one value.
	if b[i] >= '0' && b[i] <= '9' {
		if end, _, ok := matchRef(b[i:]); ok {
			return i + end, nil
		}
	}
	return end, nil
}

// pdfString encodes s as a PDF text string: UTF-16BE with a byte order
// mark, with the delimiters escaped.
func pdfString(s string) []byte {
	out := []byte{'(', 0xfe, 0xff}
	put := func(u uint16) {
		for _, c := range []byte{byte(u >> 8), byte(u)} {
			if c == '(' || c == ')' || c == '\\' {
				out = append(out, '\\')
			}
			out = append(out, c)
		}
	}
	for _, r := range s {
		if r >= 0x10000 {
			r -= 0x10000
			put(uint16(0xd800 + r>>10))
			put(uint16(0xdc00 + r&0x3ff))
			continue
		}
		put(uint16(r))
	}
	return append(out, ')')
}

// scanRefs finds the indirect references "N G R" in PDF object text,
// skipping strings, hex strings and comments. With stopAtStream it stops at
// the stream keyword or endobj and returns where that starts. Each ref is
// {start of N, end of N, end of "R"}.
func scanRefs(b []byte, stopAtStream bool) ([][3]int, int) {
	var refs [][3]int
	for i := 0; i < len(b); {
		c := b[i]
		switch {
		case c == '(':
			i, _ = stringEnd(b, i)
		case c == '<' && i+1 < len(b) && b[i+1] == '<':
			i += 2
		case c == '<':
			for i < len(b) && b[i] != '>' {
				i++
			}
			i++
		case c == '%':
			for i < len(b) && b[i] != '\n' && b[i] != '\r' {
				i++
			}
		case c >= '0' && c <= '9' && (i == 0 || !isRegular(b[i-1])):
			if end, numEnd, ok := matchRef(b[i:]); ok {
				refs = append(refs, [3]int{i, i + numEnd, i + end})
				i += end
				continue
			}
			for i < len(b) && isRegular(b[i]) {
				i++
			}
		case stopAtStream && c == 's' && bytes.HasPrefix(b[i:], []byte("stream")) && (i == 0 || !isRegular(b[i-1])):
			return refs, i
		case stopAtStream && c == 'e' && bytes.HasPrefix(b[i:], []byte("endobj")):
			return refs, i
		default:
			i++
		}
	}
	return refs, len(b)
}

// stringEnd returns the end of the literal string starting at b[i] == '('
// (balanced parentheses, backslash escapes), or len(b) and false.
func stringEnd(b []byte, i int) (int, bool) {
	depth := 0
	for ; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return i + 1, true
			}
		}
	}
	return len(b), false
}

// matchRef matches "N G R" (white space between, a delimiter after) at the
// start of b; it returns the end of R and of N.
func matchRef(b []byte) (end, numEnd int, ok bool) {
	digits := func(i int) int {
		j := i
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		return j
	}
	space := func(i int) int {
		j := i
		for j < len(b) && (b[j] == ' ' || b[j] == '\t' || b[j] == '\r' || b[j] == '\n' || b[j] == '\f') {
			j++
		}
		return j
	}
	numEnd = digits(0)
	g := space(numEnd)
	if numEnd == 0 || g == numEnd {
		return 0, 0, false
	}
	gEnd := digits(g)
	r := space(gEnd)
	if gEnd == g || r == gEnd || r >= len(b) || b[r] != 'R' {
		return 0, 0, false
	}
	if r+1 < len(b) && isRegular(b[r+1]) {
		return 0, 0, false
	}
	return r + 1, numEnd, true
}

// isRegular tells whether c is part of a PDF token (not a delimiter or space).
func isRegular(c byte) bool {
	switch c {
	case ' ', '\t', '\r', '\n', '\f', 0, '(', ')', '<', '>', '[', ']', '{', '}', '/', '%':
		return false
	}
	return true
}
