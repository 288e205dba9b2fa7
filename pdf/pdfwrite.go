package pdf

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
)

// mergeSource is one parsed input of Merge.
type mergeSource struct {
	*rawPDF
	leaves []pageRef
	nodes  map[int]bool // inner page tree nodes
}

func openSource(b []byte) (mergeSource, error) {
	p, err := readPDF(b)
	if err != nil {
		return mergeSource{}, err
	}
	leaves, nodes, err := p.pages()
	if err != nil {
		return mergeSource{}, err
	}
	if len(leaves) == 0 {
		return mergeSource{}, fmt.Errorf("no pages")
	}
	return mergeSource{rawPDF: p, leaves: leaves, nodes: nodes}, nil
}

// infoEntry is the text of key in the info dictionary, "" if absent.
func (s mergeSource) infoEntry(key string) []byte {
	if s.info == 0 {
		return nil
	}
	ents, _ := dictEntries(s.objs[s.info].dict)
	for _, e := range ents {
		if e.key == key {
			return e.val
		}
	}
	return nil
}

// date is the creation date, "D:…", or "".
func (s mergeSource) date() string {
	v := s.infoEntry("CreationDate")
	if len(v) < 2 || v[0] != '(' || v[len(v)-1] != ')' {
		return ""
	}
	return string(v[1 : len(v)-1])
}

// paper names the size of the first page: Letter is 792 pt high, A4 842.
func (s mergeSource) paper() string {
	box := bytes.Trim(s.leaves[0].attrs["MediaBox"], "[] ")
	f := bytes.Fields(box)
	if len(f) == 4 {
		if h, err := strconv.ParseFloat(string(f[3]), 64); err == nil && h < 800 {
			return "Letter"
		}
	}
	return "A4"
}

// infoDict is the info dictionary to carry over (without references, which
// would point into the source), or a minimal one.
func (s mergeSource) infoDict() []byte {
	if s.info != 0 {
		d := s.objs[s.info].dict
		if refs, _ := scanRefs(d, false); len(refs) == 0 {
			if ents, err := dictEntries(d); err == nil {
				return joinDict(ents)
			}
		}
	}
	return []byte("<</Producer (tsim)>>")
}

func joinDict(ents []dictEntry) []byte {
	var b bytes.Buffer
	b.WriteString("<<")
	for _, e := range ents {
		b.WriteString("/" + e.key + " ")
		b.Write(e.val)
		b.WriteByte('\n')
	}
	b.WriteString(">>")
	return b.Bytes()
}

// pdfWriter collects numbered objects and writes them with a classic xref
// table. Objects are written in number order, so equal input gives equal
// bytes.
type pdfWriter struct {
	objs [][]byte // object i+1's text after "N 0 obj"
}

func (w *pdfWriter) reserve() int {
	w.objs = append(w.objs, nil)
	return len(w.objs)
}

// set stores a complete object made of a dictionary.
func (w *pdfWriter) set(n int, dict string) {
	w.objs[n-1] = []byte("\n" + dict + "\nendobj\n")
}

// copyPages copies the pages of s and every object they reach, renumbered,
// with each page's parent set to tree and the attributes it inherited made
// its own. References to the source's catalog and page tree go to catalog
// and tree. It returns the pages' new numbers in order.
func (w *pdfWriter) copyPages(s mergeSource, catalog, tree int) ([]int, error) {
	renum := map[int]int{s.root: catalog}
	for n := range s.nodes {
		renum[n] = tree
	}
	isLeaf := map[int]pageRef{}
	for _, l := range s.leaves {
		isLeaf[l.num] = l
	}
	var queue []int
	number := func(old int) (int, error) {
		if n, ok := renum[old]; ok {
			return n, nil
		}
		if s.objs[old] == nil {
			return 0, fmt.Errorf("reference to missing object %d", old)
		}
		n := w.reserve()
		renum[old] = n
		queue = append(queue, old)
		return n, nil
	}
	rewrite := func(src []byte) ([]byte, error) {
		refs, _ := scanRefs(src, false)
		var out bytes.Buffer
		last := 0
		for _, r := range refs {
			old, _ := strconv.Atoi(string(src[r[0]:r[1]]))
			n, err := number(old)
			if err != nil {
				return nil, err
			}
			out.Write(src[last:r[0]])
			fmt.Fprintf(&out, "%d 0 R", n)
			last = r[2]
		}
		out.Write(src[last:])
		return out.Bytes(), nil
	}
	pages := make([]int, len(s.leaves))
	listed := map[int]bool{}
	for i, l := range s.leaves {
		if listed[l.num] {
			return nil, fmt.Errorf("page object %d appears twice in the page tree", l.num)
		}
		listed[l.num] = true
		pages[i], _ = number(l.num)
		for len(queue) > 0 {
			old := queue[0]
			queue = queue[1:]
			o := s.objs[old]
			dict := o.dict
			page, leaf := isLeaf[old]
			if leaf {
				ents, err := dictEntries(dict)
				if err != nil {
					return nil, fmt.Errorf("page object %d: %w", old, err)
				}
				own := map[string]bool{}
				kept := ents[:0:0]
				for _, e := range ents {
					own[e.key] = true
					if e.key != "Parent" {
						kept = append(kept, e)
					}
				}
				for _, k := range []string{"MediaBox", "Resources", "CropBox", "Rotate"} {
					if v, ok := page.attrs[k]; ok && !own[k] {
						kept = append(kept, dictEntry{key: k, val: v})
					}
				}
				dict = append([]byte("\n"), joinDict(kept)...)
			}
			d, err := rewrite(dict)
			if err != nil {
				return nil, err
			}
			if leaf { // the parent is added after renumbering: it is already a new number
				d = append(bytes.TrimSuffix(d, []byte(">>")), fmt.Sprintf("/Parent %d 0 R>>\n", tree)...)
			}
			w.objs[renum[old]-1] = append(d, o.tail...)
		}
	}
	return pages, nil
}

// bookmark is one outline entry; page is a 0-based index into the pages.
type bookmark struct {
	title string
	page  int
	bold  bool
	open  bool // children shown
	kids  []bookmark
}

// writeOutline writes the outline tree under the reserved root object.
func (w *pdfWriter) writeOutline(root int, bms []bookmark, pages []int) {
	var items func(parent int, bms []bookmark) (first, last, visible int)
	items = func(parent int, bms []bookmark) (first, last, visible int) {
		nums := make([]int, len(bms))
		for i := range bms {
			nums[i] = w.reserve()
		}
		for i, bm := range bms {
			var b bytes.Buffer
			b.WriteString("<</Title ")
			b.Write(pdfString(bm.title))
			fmt.Fprintf(&b, " /Parent %d 0 R /Dest [%d 0 R /Fit]", parent, pages[bm.page])
			if i > 0 {
				fmt.Fprintf(&b, " /Prev %d 0 R", nums[i-1])
			}
			if i+1 < len(bms) {
				fmt.Fprintf(&b, " /Next %d 0 R", nums[i+1])
			}
			if len(bm.kids) > 0 {
				f, l, v := items(nums[i], bm.kids)
				count := -len(bm.kids)
				if bm.open {
					count = v
					visible += v
				}
				fmt.Fprintf(&b, " /First %d 0 R /Last %d 0 R /Count %d", f, l, count)
			}
			if bm.bold {
				b.WriteString(" /F 2")
			}
			b.WriteString(">>")
			w.set(nums[i], b.String())
		}
		return nums[0], nums[len(nums)-1], visible + len(bms)
	}
	if len(bms) == 0 {
		w.set(root, "<</Type /Outlines /Count 0>>")
		return
	}
	first, last, visible := items(root, bms)
	w.set(root, fmt.Sprintf("<</Type /Outlines /First %d 0 R /Last %d 0 R /Count %d>>", first, last, visible))
}

// bytes writes the file: header, objects, xref table and a trailer whose
// identifier is a hash of everything before it.
func (w *pdfWriter) bytes(version, root, info int) []byte {
	var out bytes.Buffer
	fmt.Fprintf(&out, "%%PDF-1.%d\n%%\xe2\xe3\xcf\xd3\n", version)
	offs := make([]int, len(w.objs))
	for i, o := range w.objs {
		offs[i] = out.Len()
		fmt.Fprintf(&out, "%d 0 obj", i+1)
		out.Write(o)
	}
	xref := out.Len()
	fmt.Fprintf(&out, "xref\n0 %d\n0000000000 65535 f \n", len(w.objs)+1)
	for _, o := range offs {
		fmt.Fprintf(&out, "%010d 00000 n \n", o)
	}
	sum := sha256.Sum256(out.Bytes())
	id := hex.EncodeToString(sum[:16])
	fmt.Fprintf(&out, "trailer\n<</Size %d /Root %d 0 R /Info %d 0 R /ID [<%s> <%s>]>>\nstartxref\n%d\n%%%%EOF\n",
		len(w.objs)+1, root, info, id, id, xref)
	return out.Bytes()
}
