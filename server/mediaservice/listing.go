package mediaservice

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/server/internal/web"
	"github.com/cairnstore/cairn/server/mediaservice/query"
)

// MaxPageNumber bounds pageNumber, so that pageNumber times pageSize
// (at most 10^10) never overflows.
const MaxPageNumber = 1_000_000

func (a *API) list(w http.ResponseWriter, r *http.Request) error {
	tenant := r.PathValue("tenant")
	// Another tenant's list is 403, a status the contract lists for it:
	// the token does not reach that tenant, whether it exists or not.
	if _, err := a.authorize(r, tenant, errForbidden, ScopeRead, ScopeManage); err != nil {
		return err
	}
	v := r.URL.Query()
	page, size := 1, 60
	var err error
	if s := v.Get("pageNumber"); s != "" {
		if page, err = strconv.Atoi(s); err != nil || page < 1 || page > MaxPageNumber {
			return badRequest(fmt.Sprintf("pageNumber must be a number from 1 to %d", MaxPageNumber))
		}
	}
	if s := v.Get("pageSize"); s != "" {
		if size, err = strconv.Atoi(s); err != nil || size < 1 || size > 10000 {
			return badRequest("pageSize must be a number from 1 to 10000")
		}
	}
	q, err := query.Parse(v.Get("q"))
	if err != nil {
		return badRequest(err.Error())
	}
	sorts, err := parseSort(v.Get("sort"))
	if err != nil {
		return err
	}
	wantTotal := web.HasToken(r.Header.Get("X-Total-Count"), "true")
	docs, total, err := a.matching(r.Context(), tenant, q, sorts != nil, wantTotal, page*size)
	if err != nil {
		return err
	}
	sortDocs(docs, sorts)
	if wantTotal {
		w.Header().Set("X-Total-Count", strconv.Itoa(total))
	}
	out := []Asset{}
	for i := (page - 1) * size; i < len(docs) && len(out) < size; i++ {
		out = append(out, a.render(r, tenant, docs[i].st))
	}
	web.JSON(w, http.StatusOK, out)
	return nil
}

type doc struct {
	st  *stored
	obj map[string]any
}

// candidates returns the ids an index can narrow q to, or narrowed false
// when every asset of the tenant must be looked at. exact says the ids are
// precisely the assets that match the indexed term (an exact-value lookup);
// a createdAt range is cut at whole index keys and is only a superset.
func (a *API) candidates(tenant string, q *query.Query) (ids []string, narrowed, exact bool, err error) {
	for _, path := range indexedPaths {
		vals, ok := q.Exact(path)
		if !ok {
			continue
		}
		seen := map[string]bool{}
		var ids []string
		for _, val := range vals {
			prefix := byPrefix(path, val)
			for rec, err := range a.Engine.Records(byNS, tenant, prefix, "") {
				if err != nil {
					return nil, false, false, err
				}
				if id := strings.TrimPrefix(rec.Key.Name, prefix); !seen[id] {
					seen[id] = true
					ids = append(ids, id)
				}
			}
		}
		return ids, true, true, nil
	}
	if lo, hi, ok := q.Bounds("metadata.createdAt"); ok {
		start := ""
		if !lo.IsZero() {
			start = fmt.Sprintf("%020d", lo.Truncate(time.Millisecond).UnixNano())
		}
		var ids []string
		for rec, err := range a.Engine.Records(createdNS, tenant, "", start) {
			if err != nil {
				return nil, false, false, err
			}
			if !hi.IsZero() && rec.Key.Name > fmt.Sprintf("%020d~", hi.UnixNano()) {
				break
			}
			ids = append(ids, string(rec.Meta))
		}
		return ids, true, false, nil
	}
	return nil, false, false, nil
}

// matching returns the tenant's assets that satisfy q, in id order, and
// their total if wantTotal. Unless sorted needs every match, it stops
// after limit matches, so a page of a list loads only what it shows; and
// when an index answers q exactly, the total is counted from the index.
func (a *API) matching(ctx context.Context, tenant string, q *query.Query, sorted, wantTotal bool, limit int) (docs []doc, total int, err error) {
	ids, narrowed, exact, err := a.candidates(tenant, q)
	if err != nil {
		return nil, 0, err
	}
	exact = exact && len(q.Terms) == 1
	all := sorted || wantTotal && !exact
	budget := query.NewBudget(a.cfg.QueryCost)
	consider := func(rec engine.Record) (bool, error) {
		var obj map[string]any
		if err := json.Unmarshal(rec.Meta, &obj); err != nil {
			return false, fmt.Errorf("%w: asset %s: %w", engine.ErrCorrupt, rec.Key.Name, err)
		}
		if ok, err := q.Match(obj, budget); err != nil {
			return false, badRequest("q is too costly to evaluate over this tenant's assets: use fewer or simpler regular expressions, or narrow it with a term on refIds.id, details.mimeType, type, access or a metadata.createdAt range")
		} else if !ok {
			return false, ctx.Err()
		}
		st, err := decodeStored(rec)
		if err != nil {
			return false, err
		}
		docs = append(docs, doc{st: st, obj: obj})
		return !all && len(docs) >= limit, ctx.Err()
	}
	if narrowed {
		slices.Sort(ids)
		for _, id := range ids {
			rec, err := a.Engine.GetRecord(assetKey(tenant, id))
			if errors.Is(err, engine.ErrNotFound) {
				continue // deleted meanwhile
			}
			if err != nil {
				return nil, 0, err
			}
			if stop, err := consider(rec); err != nil || stop {
				if err != nil {
					return nil, 0, err
				}
				break
			}
		}
	} else {
		for rec, err := range a.Engine.Records(namespace, tenant, "", "") {
			if err != nil {
				return nil, 0, err
			}
			if stop, err := consider(rec); err != nil || stop {
				if err != nil {
					return nil, 0, err
				}
				break
			}
		}
	}
	switch {
	case all:
		total = len(docs)
	case exact:
		total = len(ids)
	}
	return docs, total, nil
}

type sortKey struct {
	path []string
	desc bool
}

// sortable are the asset's documented scalar fields: the ones a list
// sorts by. A documented field that is an object or array (refIds,
// details, metadata) cannot be sorted by; any other name is no field of
// an asset, which every asset lacks alike, so it leaves the order as it
// is (the document's own example sorts by name).
var sortable = []string{"id", "type", "access", "url", "details.filename", "details.mimeType", "details.bytes", "details.etag",
	"metadata.version", "metadata.createdAt", "metadata.modifiedAt"}

func parseSort(s string) ([]sortKey, error) {
	var out []sortKey
	if s == "" {
		return nil, nil
	}
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		name, dir, _ := strings.Cut(f, ":")
		if name == "" || len(out) == 8 {
			return nil, badRequest("sort is field[:desc], up to 8 fields separated by commas")
		}
		top, _, _ := strings.Cut(name, ".")
		switch {
		case slices.Contains(sortable, name):
			out = append(out, sortKey{path: strings.Split(name, "."), desc: dir == "desc" || dir == "DESC"})
		case top == "refIds" || top == "details" || top == "metadata":
			return nil, badRequest("sort takes scalar fields of an asset: " + strings.Join(sortable, ", "))
		}
	}
	return out, nil
}

// sortDocs orders docs by the sort keys (missing values last), then id.
// Sort keys are scalar fields (parseSort), so a comparison is of two
// strings, numbers or booleans, never of whole objects.
func sortDocs(docs []doc, keys []sortKey) {
	slices.SortStableFunc(docs, func(x, y doc) int {
		for _, k := range keys {
			a, aok := lookup(x.obj, k.path)
			b, bok := lookup(y.obj, k.path)
			switch {
			case !aok && !bok:
				continue
			case !aok:
				return 1
			case !bok:
				return -1
			}
			c := compareAny(a, b)
			if k.desc {
				c = -c
			}
			if c != 0 {
				return c
			}
		}
		return strings.Compare(x.st.ID, y.st.ID)
	})
}

func lookup(v any, path []string) (any, bool) {
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[p]; !ok {
			return nil, false
		}
	}
	return v, v != nil
}

func compareAny(a, b any) int {
	switch x := a.(type) {
	case float64:
		if y, ok := b.(float64); ok {
			switch {
			case x < y:
				return -1
			case x > y:
				return 1
			}
			return 0
		}
	case string:
		if y, ok := b.(string); ok {
			return strings.Compare(x, y)
		}
	}
	return strings.Compare(fmt.Sprint(a), fmt.Sprint(b))
}
