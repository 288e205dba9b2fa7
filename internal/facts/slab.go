package facts

// slab hands out elements of shared chunks: one allocation per chunk instead
// of one per model object. The iptables rules of a router are thousands of
// small objects that all live as long as the model, so keeping a chunk alive
// for as long as any of its elements is no loss.
type slab[T any] struct {
	chunk []T
}

// slabChunk is the number of elements a new chunk holds: big enough that a
// typical ruleset needs a few chunks, small enough that a tiny one wastes
// little.
const slabChunk = 64

// new returns a pointer to a fresh zero T.
func (s *slab[T]) new() *T {
	if len(s.chunk) == cap(s.chunk) {
		s.chunk = make([]T, 0, slabChunk)
	}
	s.chunk = s.chunk[:len(s.chunk)+1]
	return &s.chunk[len(s.chunk)-1]
}

// make returns n zero elements cut from a chunk, nil when n is 0. The
// slice's capacity is its length, so appending to it copies instead of
// writing over a neighbour.
func (s *slab[T]) make(n int) []T {
	if n == 0 {
		return nil
	}
	if cap(s.chunk)-len(s.chunk) < n {
		s.chunk = make([]T, 0, max(slabChunk, n))
	}
	start := len(s.chunk)
	s.chunk = s.chunk[:start+n]
	return s.chunk[start : start+n : start+n]
}

// clone returns a copy of src cut from a chunk, nil when src is empty.
func (s *slab[T]) clone(src []T) []T {
	out := s.make(len(src))
	copy(out, src)
	return out
}
