package serve

import (
	"context"
	"sync"
)

// stream is one open event stream.
type stream struct {
	user   string
	sess   [32]byte
	cancel context.CancelFunc
}

// streams counts the open event streams so one user cannot hold every
// file descriptor of the process, and ends them when their session ends
// (logout, expiry, deleted user).
type streams struct {
	mu      sync.Mutex
	all     map[*stream]struct{}
	perUser map[string]int
	maxUser int
	max     int
}

func newStreams(maxUser, max int) *streams {
	return &streams{all: map[*stream]struct{}{}, perUser: map[string]int{}, maxUser: maxUser, max: max}
}

// open registers a stream of sess, or says which cap it hits ("" = ok).
func (ss *streams) open(ctx context.Context, sess session) (*stream, context.Context, string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if len(ss.all) >= ss.max {
		return nil, nil, "the server has too many open event streams; try again later"
	}
	if ss.perUser[sess.user] >= ss.maxUser {
		return nil, nil, "you have too many open event streams; close some pages"
	}
	sctx, cancel := context.WithCancel(ctx)
	st := &stream{user: sess.user, sess: sess.key, cancel: cancel}
	ss.all[st] = struct{}{}
	ss.perUser[sess.user]++
	return st, sctx, ""
}

func (ss *streams) close(st *stream) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if _, ok := ss.all[st]; !ok {
		return
	}
	delete(ss.all, st)
	if ss.perUser[st.user]--; ss.perUser[st.user] <= 0 {
		delete(ss.perUser, st.user)
	}
	st.cancel()
}

// closeWhere ends every stream pick selects.
func (ss *streams) closeWhere(pick func(*stream) bool) {
	ss.mu.Lock()
	var gone []*stream
	for st := range ss.all {
		if pick(st) {
			gone = append(gone, st)
		}
	}
	ss.mu.Unlock()
	for _, st := range gone {
		ss.close(st)
	}
}

func (ss *streams) closeSession(key [32]byte) {
	ss.closeWhere(func(st *stream) bool { return st.sess == key })
}

func (ss *streams) closeSessions(keys [][32]byte) {
	if len(keys) == 0 {
		return
	}
	set := make(map[[32]byte]bool, len(keys))
	for _, k := range keys {
		set[k] = true
	}
	ss.closeWhere(func(st *stream) bool { return set[st.sess] })
}

func (ss *streams) closeUser(user string) {
	ss.closeWhere(func(st *stream) bool { return st.user == user })
}

// count returns the open streams in total and of user.
func (ss *streams) count(user string) (total, ofUser int) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return len(ss.all), ss.perUser[user]
}
