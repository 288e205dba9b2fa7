package pdf

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

var (
	reDate   = regexp.MustCompile(`/(CreationDate|ModDate) ?\((D:[^)]*)\)`)
	reID     = regexp.MustCompile(`/ID ?\[ ?<([0-9a-fA-F]+)> ?<([0-9a-fA-F]+)> ?\]`)
	reSubsec = regexp.MustCompile(`^(\d+) (\d+)\r?\n`)
	reObjHdr = regexp.MustCompile(`^(\d+) (\d+) obj`)
	reRef    = regexp.MustCompile(`^(\d+)\s+(\d+)\s+R`)
	reSize   = regexp.MustCompile(`/Size \d+|/Size\d+`)
)

// canonicalPDF makes pdfcpu's output reproducible. pdfcpu takes the info
// dates and the file identifier from the clock, numbers merged objects in
// map order and writes them in map order. This rewrites the file: dates set
// to date, objects renumbered in the order they are reached from the
// trailer (dictionary keys are already sorted), written in that order with
// a fresh xref table, unreachable objects dropped, and the identifier set
// to a hash of the result. It needs a classic xref table (no xref or object
// streams) and leaves stream data untouched.
func canonicalPDF(b []byte, date string) ([]byte, error) {
	b = reDate.ReplaceAllFunc(b, func(m []byte) []byte {
		sub := reDate.FindSubmatchIndex(m)
		if len(date) != sub[5]-sub[4] {
			return m
		}
		out := append([]byte{}, m...)
		copy(out[sub[4]:sub[5]], date)
		return out
	})
	bad := func(what string) error { return errors.New("merge: unexpected PDF from pdfcpu: " + what) }
	xref := bytes.LastIndex(b, []byte("\nxref\n"))
	tr := bytes.LastIndex(b, []byte("\ntrailer"))
	sx := bytes.LastIndex(b, []byte("\nstartxref"))
	if xref < 0 || tr < xref || sx < tr {
		return nil, bad("no classic xref table")
	}
	xref++
	offs := map[int]int{}
	table := b[xref+len("xref\n") : tr+1]
	for len(table) > 0 {
		m := reSubsec.FindSubmatch(table)
		if m == nil {
			return nil, bad("malformed xref table")
		}
		first, _ := strconv.Atoi(string(m[1]))
		count, _ := strconv.Atoi(string(m[2]))
		table = table[len(m[0]):]
		for i := 0; i < count; i++ {
			if len(table) < 20 {
				return nil, bad("short xref table")
			}
			if table[17] == 'n' {
				off, _ := strconv.Atoi(string(table[:10]))
				offs[first+i] = off
			}
			table = table[20:]
		}
	}
	// Each object runs from its offset to the next object's.
	sorted := make([]int, 0, len(offs))
	for n := range offs {
		sorted = append(sorted, n)
	}
	sort.Slice(sorted, func(i, j int) bool { return offs[sorted[i]] < offs[sorted[j]] })
	type object struct {
		dict   []byte // text before the stream data (after "N G obj")
		stream []byte // "stream…endobj" or "endobj"
		refs   [][3]int
	}
	objs := map[int]*object{}
	for i, n := range sorted {
		end := xref
		if i+1 < len(sorted) {
			end = offs[sorted[i+1]]
		}
		if offs[n] <= 0 || offs[n] > end || end > len(b) {
			return nil, bad("xref offset out of range")
		}
		body := b[offs[n]:end]
		h := reObjHdr.FindIndex(body)
		if h == nil {
			return nil, bad(fmt.Sprintf("object %d has no header", n))
		}
		body = body[h[1]:]
		refs, cut := scanRefs(body, true)
		objs[n] = &object{dict: body[:cut], stream: body[cut:], refs: refs}
	}
	trailer := b[tr+1 : sx+1]
	trefs, _ := scanRefs(trailer, false)

	// Number objects in the order they are reached from the trailer.
	renum := map[int]int{}
	var order []int
	queue := []int{}
	visit := func(refs [][3]int, src []byte) {
		for _, r := range refs {
			n, _ := strconv.Atoi(string(src[r[0]:r[1]]))
			if _, ok := renum[n]; ok || objs[n] == nil {
				continue
			}
			renum[n] = len(order) + 1
			order = append(order, n)
			queue = append(queue, n)
		}
	}
	visit(trefs, trailer)
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		visit(objs[n].refs, objs[n].dict)
	}
	rewrite := func(src []byte, refs [][3]int) ([]byte, error) {
		var out bytes.Buffer
		last := 0
		for _, r := range refs {
			n, _ := strconv.Atoi(string(src[r[0]:r[1]]))
			nn, ok := renum[n]
			if !ok {
				return nil, bad(fmt.Sprintf("reference to missing object %d", n))
			}
			out.Write(src[last:r[0]])
			fmt.Fprintf(&out, "%d 0 R", nn)
			last = r[2]
		}
		out.Write(src[last:])
		return out.Bytes(), nil
	}

	var out bytes.Buffer
	if len(sorted) > 0 {
		out.Write(b[:offs[sorted[0]]])
	}
	newOff := make([]int, len(order)+1)
	for i, n := range order {
		newOff[i+1] = out.Len()
		d, err := rewrite(objs[n].dict, objs[n].refs)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&out, "%d 0 obj", i+1)
		out.Write(d)
		out.Write(objs[n].stream)
	}
	xrefAt := out.Len()
	fmt.Fprintf(&out, "xref\n0 %d\n0000000000 65535 f \n", len(order)+1)
	for _, o := range newOff[1:] {
		fmt.Fprintf(&out, "%010d 00000 n \n", o)
	}
	t, err := rewrite(trailer, trefs)
	if err != nil {
		return nil, err
	}
	t = reSize.ReplaceAll(t, []byte(fmt.Sprintf("/Size %d", len(order)+1)))
	// Zero the identifier, hash everything, then write the hash as the ID.
	idAt := -1
	if loc := reID.FindSubmatchIndex(t); loc != nil {
		idAt = out.Len()
		for i := loc[2]; i < loc[5]; i++ {
			if t[i] != '<' && t[i] != '>' && t[i] != ' ' {
				t[i] = '0'
			}
		}
	}
	out.Write(t)
	fmt.Fprintf(&out, "startxref\n%d\n%%%%EOF\n", xrefAt)
	res := out.Bytes()
	if idAt >= 0 {
		sum := sha256.Sum256(res)
		id := hex.EncodeToString(sum[:16])
		loc := reID.FindSubmatchIndex(res[idAt:])
		for _, g := range [][2]int{{loc[2], loc[3]}, {loc[4], loc[5]}} {
			n := g[1] - g[0]
			copy(res[idAt+g[0]:idAt+g[1]], strings.Repeat(id, n/len(id)+1)[:n])
		}
	}
	return res, nil
}

// scanRefs finds the indirect references "N G R" in PDF object text,
// skipping strings, hex strings and comments. With stopAtStream it stops at
// the stream keyword and returns where the stream part starts. Each ref is
// {start of N, end of N, end of "R"}.
func scanRefs(b []byte, stopAtStream bool) ([][3]int, int) {
	var refs [][3]int
	for i := 0; i < len(b); {
		c := b[i]
		switch {
		case c == '(':
			depth := 0
			for ; i < len(b); i++ {
				switch b[i] {
				case '\\':
					i++
				case '(':
					depth++
				case ')':
					depth--
				}
				if depth == 0 {
					break
				}
			}
			i++
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
			if m := reRef.FindSubmatchIndex(b[i:]); m != nil && (i+m[1] == len(b) || !isRegular(b[i+m[1]])) {
				refs = append(refs, [3]int{i, i + m[3], i + m[1]})
				i += m[1]
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

// isRegular tells whether c is part of a PDF token (not a delimiter or space).
func isRegular(c byte) bool {
	switch c {
	case ' ', '\t', '\r', '\n', '\f', 0, '(', ')', '<', '>', '[', ']', '{', '}', '/', '%':
		return false
	}
	return true
}
