package facts

// slab hands out elements of shared chunks: one allocation per chunk instead
// of one per model object. The iptables rules of a router are thousands of
// small objects that all live as long as the model, so keeping a chunk alive
// for as long as any of its elements is no loss.
type slab[T any] struct {
	chunk []T
	// next is the capacity of the next chunk: a caller's estimate of
	// what it needs for the first, half of all so far after that.
	next  int
	total int // the capacity of all chunks so far
}

// Chunks grow by half of what the slab holds: a tiny ruleset wastes
// little, a big one needs few chunks, and an estimate a little short of
// the need costs a small chunk, not a second one as big.
const (
	slabMin = 16
	slabMax = 1024
)

// refill starts a new chunk with room for at least n elements.
func (s *slab[T]) refill(n int) {
	size := max(s.next, slabMin, n)
	s.total += size
	s.next = min(s.total/2, slabMax)
	s.chunk = make([]T, 0, size)
}

// new returns a pointer to a fresh zero T.
func (s *slab[T]) new() *T {
	if len(s.chunk) == cap(s.chunk) {
		s.refill(1)
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
		s.refill(n)
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
