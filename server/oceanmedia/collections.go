package oceanmedia

import (
	"encoding/json"
	"errors"
	"iter"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/server/internal/web"
)

// MaxPage bounds the page a collection may ask for, so that page times
// page_size (at most 1000) never overflows.
const MaxPage = 1_000_000

func (a *API) list(w http.ResponseWriter, r *http.Request) error {
	if _, err := a.authorize(r, ReadOnly); err != nil {
		return err
	}
	q := r.URL.Query()
	match := map[string]string{}
	for _, f := range indexed {
		if q.Has(f) {
			match[f] = q.Get(f)
		}
	}
	search := strings.ToLower(q.Get("search"))
	group := q.Get("group")
	if !slices.Contains(indexed, group) {
		group = "" // as the original: an unknown group is ignored
	}
	// "The basic URL returns all Medium resources": a collection pages
	// only when page is given, as the original did.
	page, size, paged := 0, 25, q.Has("page")
	if paged {
		n, err := strconv.Atoi(q.Get("page"))
		if err == nil && n > MaxPage || errors.Is(err, strconv.ErrRange) {
			return errPageTooLarge
		}
		if err == nil {
			page = n
		}
		if s := q.Get("page_size"); s != "" {
			if n, err := strconv.Atoi(s); err == nil && n > 0 {
				size = min(n, 1000)
			}
		}
	}
	arr := web.NewArray(w, http.StatusOK)
	if page < 0 {
		arr.Close()
		return nil
	}
	matches := func(en *entry) bool {
		for f, v := range match {
			if en.field(f) != v {
				return false
			}
		}
		return search == "" || strings.Contains(strings.ToLower(en.FileName), search)
	}
	ids := a.matching(match, matches)
	if group != "" {
		ids = a.grouped(group, match, matches)
	}
	skip, left := page*size, size
	for id, err := range ids {
		if err == nil && skip > 0 {
			skip--
			continue
		}
		var rec engine.Record
		if err == nil {
			rec, err = a.Engine.GetRecord(mediumKey(id))
			if isNotFound(err) {
				continue // deleted meanwhile
			}
		}
		var m *medium
		if err == nil {
			m, err = decodeMedium(rec)
		}
		if err != nil {
			if arr.Started() {
				a.Logger.Error("/v1/media collection cut off", "err", err)
				arr.Abort()
			}
			return err
		}
		if arr.Add(a.render(r, id, m)) != nil {
			return nil // the client is gone
		}
		if left--; paged && left == 0 {
			break
		}
	}
	arr.Close()
	return nil
}

// driving picks the index a collection walks: one of the matched
// properties, or every medium. It returns the index records' prefix.
func driving(match map[string]string) string {
	for _, f := range indexed {
		if v, ok := match[f]; ok {
			return valuePrefix(f, v)
		}
	}
	return allPrefix
}

// listBatch is how many index records a collection reads at a time.
var listBatch = 256

// matching yields the ids of the media that match, in updated_at order,
// reading the index a batch at a time.
func (a *API) matching(match map[string]string, ok func(*entry) bool) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		for recs, err := range a.Engine.Batches(byNamespace, "", driving(match), "", listBatch) {
			if err != nil {
				yield("", err)
				return
			}
			for _, rec := range recs {
				var en entry
				if err := json.Unmarshal(rec.Meta, &en); err != nil {
					yield("", err)
					return
				}
				if ok(&en) && !yield(en.ID, nil) {
					return
				}
			}
		}
	}
}

// grouped yields one medium per distinct value of field among those that
// match (the earliest updated), in updated_at order. It holds one
// (order, id) pair per distinct value, to sort them.
func (a *API) grouped(field string, match map[string]string, ok func(*entry) bool) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		type pick struct {
			order, id string
		}
		var picks []pick
		values := []string{}
		if v, fixed := match[field]; fixed {
			values = append(values, v)
		} else {
			for rec, err := range a.Engine.Records(valuesNamespace, "", fieldPrefix(field), "") {
				var v string
				if err == nil {
					v, err = valueOf(rec.Key.Name)
				}
				if err != nil {
					yield("", err)
					return
				}
				values = append(values, v)
			}
		}
		for _, v := range values {
			prefix := valuePrefix(field, v)
			for rec, err := range a.Engine.Records(byNamespace, "", prefix, "") {
				if err != nil {
					yield("", err)
					return
				}
				var en entry
				if err := json.Unmarshal(rec.Meta, &en); err != nil {
					yield("", err)
					return
				}
				if ok(&en) {
					picks = append(picks, pick{strings.TrimPrefix(rec.Key.Name, prefix), en.ID})
					break
				}
			}
		}
		slices.SortFunc(picks, func(x, y pick) int { return strings.Compare(x.order, y.order) })
		for _, p := range picks {
			if !yield(p.id, nil) {
				return
			}
		}
	}
}
