package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/internal/mail"
	"github.com/cairnstore/cairn/internal/variant"
	"github.com/cairnstore/cairn/server"
	"github.com/cairnstore/cairn/server/cloudstorage"
	"github.com/cairnstore/cairn/server/oceanmedia"
	"github.com/cairnstore/cairn/server/storageapi"
)

func serveCommand() command {
	return command{
		name:  "serve",
		short: "run the HTTP server (127.0.0.1:8080, data in ./cairn-data)",
		long: `
Serve opens the store (creating it if needed) and serves HTTP until
SIGINT or SIGTERM. On a signal /readyz turns false, requests in flight
finish (up to --shutdown-timeout), and the store is closed cleanly.`,
		flags: func(fs *flag.FlagSet, e *env) func(context.Context) error {
			data := dataFlag(fs)
			listen := fs.String("listen", "127.0.0.1:8080", "address to listen on")
			metricsListen := fs.String("metrics-listen", "127.0.0.1:9180", "address of /metrics (with /livez and /readyz) for Prometheus; keep it off the public network: its counters show what was deduplicated (\"\": no metrics)")
			smtpAddr := fs.String("smtp-addr", "", "SMTP relay (host:port) for /v1/media autodelete notifications (default: none sent)")
			smtpFrom := fs.String("smtp-from", "cairn@localhost", "sender address of the notifications")
			apis := fs.String("apis", "all", "the APIs to serve, comma-separated, of "+strings.Join(server.APINames, ", ")+" (the others answer 404; their stored records are still looked after)")
			publicURL := fs.String("public-url", "", "base of the absolute URLs the APIs return, e.g. https://media.example.com (default: each request's host)")
			level := fs.String("log-level", "info", "log level: debug, info, warn or error")
			format := fs.String("log-format", "text", "log format: text (key=value) or json (one object a line)")
			drain := fs.Duration("drain-delay", 0, "on shutdown, how long /readyz answers 503 while requests are still taken, before the listener closes (so that a load balancer stops sending new ones first)")
			grace := fs.Duration("shutdown-timeout", 30*time.Second, "how long requests in flight may take to finish on shutdown")
			var m maintenance
			fs.DurationVar(&m.expire, "expire-interval", time.Second, "how often expired records are deleted (0: never)")
			fs.DurationVar(&m.gc, "gc-interval", time.Hour, "how often a garbage collection pass runs (0: never)")
			fs.DurationVar(&m.scrub, "scrub-interval", 7*24*time.Hour, "how often stored chunks are re-read and verified (0: never)")
			sample := fs.String("scrub-sample", "100%", "the share of chunks each background scrub verifies")
			var eo engine.Options
			store := storeFlag(fs)
			fs.Int64Var(&eo.SegmentSize, "segment-size", 1<<30, "seal a segment file at this many bytes; smaller segments let compaction return space sooner on small disks")
			fs.Int64Var(&eo.MinFreeBytes, "min-free-bytes", 64<<20, "refuse uploads (507) while the file system has less free space than this (-1: never)")
			hideDedup := fs.Bool("hide-dedup-timing", true, "an upload of bytes someone already stored waits about as long as writing them would have taken, so that no client can time its uploads to learn what others stored; false: duplicates upload faster (for a store whose clients trust each other)")
			fs.Int64Var(&eo.ReadCache, "read-cache", 256<<20, "bytes of verified chunks kept in memory for downloads (each tenant's own), counting the ones being read; the least recently used are dropped past it")
			fs.DurationVar(&eo.GCGrace, "gc-grace", time.Hour, "how long content nothing refers to is kept before GC releases it; with several nodes also how long an upload may take, and how long after a segment is sealed before it is compacted")
			fs.StringVar(&eo.Node, "node-name", "", "the name this node goes by to the others sharing its store, in their logs and leases (default: host/pid/random)")
			fs.IntVar(&eo.MaxUploads, "max-uploads", 64, "uploads that stream at once (each holds an 8 MiB chunking buffer); more wait for a slot")
			var body server.Config // the flags' share of it
			corsOrigins := fs.String("cors-origins", "", "origins (https://app.example, comma-separated; * for any) whose browser apps may call every API (default: none; per bucket, tenant or organization: cairn cors)")
			corsMethods := fs.String("cors-methods", "", "the methods (comma-separated) browser apps of --cors-origins may use (default: every route's own)")
			corsHeaders := fs.String("cors-headers", "", "the request headers (comma-separated) browser apps of --cors-origins may send (default: any they ask for)")
			proxies := fs.String("trusted-proxies", "", "reverse proxies (CIDRs or addresses, comma-separated) whose X-Forwarded-For, -Proto and -Host or Forwarded headers give the client's address, scheme and host (default: none; from anyone else they are ignored)")
			fs.DurationVar(&body.PublicMaxAge, "public-max-age", 0, "how long browsers and shared caches may keep public media without asking again (Cache-Control max-age; 0: they revalidate each time by ETag, a 304)")
			fs.IntVar(&body.MaxUploadsPerClient, "max-uploads-per-client", 16, "uploads one signed-in identity streams at once; more wait for one of its own to end")
			fs.IntVar(&body.MaxUploadsPerAddress, "max-uploads-per-address", 4, "anonymous uploads one client address streams at once")
			fs.IntVar(&body.MaxAnonymousUploads, "max-anonymous-uploads", 16, "anonymous uploads streaming at once from all addresses together (the rest of --max-uploads is for signed-in clients)")
			fs.IntVar(&body.MaxDownloadsPerAddress, "max-downloads-per-address", 64, "downloads one client address runs at once")
			fs.DurationVar(&body.SlotWait, "slot-wait", 30*time.Second, "how long an upload or download waits for a slot before it is refused (429 or 503, with Retry-After)")
			fs.Float64Var(&body.LoginFailuresPerAddress, "login-failures-per-address", 10, "failed sign-ins a minute one client address may make, whatever identity it tries; past them, 429")
			fs.Float64Var(&body.LoginFailuresPerIdentity, "login-failures-per-identity", 5, "failed sign-ins a minute an identity may take from addresses that never signed in as it; past them, 429")
			fs.Int64Var(&body.BodyMinRate, "body-min-rate", 1024, "a request body that brings fewer bytes a second than this, over --body-rate-window, is cut off with 408 (-1: no minimum)")
			fs.DurationVar(&body.BodyRateWindow, "body-rate-window", 20*time.Second, "the time --body-min-rate is measured over")
			fs.DurationVar(&body.BodyIdleTimeout, "body-idle-timeout", time.Minute, "a request body that sends nothing for this long is cut off with 408")
			var sa storageapi.Config
			publicUploads := fs.Bool("storage-public-uploads", true, "accept anonymous uploads to the Storage API's public mode")
			fs.Int64Var(&sa.MaxPublicFile, "storage-public-max-bytes", 25<<20, "the largest anonymous upload, in bytes")
			fs.Float64Var(&sa.PublicRate, "storage-public-rate", 10, "anonymous uploads per minute from one client address")
			vdef := variant.DefaultConfig()
			variants := fs.Bool("variants", true, "make the image variants downloads ask for (?w=, h=, fit=, format=, q=, preset=); false: such requests are refused with 400")
			variantSizes := fs.String("variant-sizes", intList(vdef.Sizes), "the widths and heights (pixels, comma-separated) variants may be asked for; \"\": presets only")
			variantQualities := fs.String("variant-qualities", intList(vdef.Qualities), "the qualities (1-100, comma-separated) variants may be asked for with q=")
			var variantPresets presetFlag
			fs.Var(&variantPresets, "variant-preset", "a named variant, name=w=200,h=200,fit=cover,format=auto (repeatable; replaces the default presets thumb and preview)")
			variantEager := fs.String("variant-eager", "", "presets (comma-separated) made as soon as an image is stored, not on the first request")
			fs.Int64Var(&vdef.MaxPixels, "variant-max-pixels", vdef.MaxPixels, "refuse (400) to make variants of images of more pixels than this, read from the header before decoding")
			fs.Int64Var(&vdef.MaxBytes, "variant-max-bytes", vdef.MaxBytes, "refuse (400) to make variants of image files larger than this")
			fs.IntVar(&vdef.Concurrency, "variant-concurrency", max(1, runtime.GOMAXPROCS(0)), "variants made at once (each takes a core and up to about 10 bytes per source pixel); the rest wait")
			fs.IntVar(&vdef.MaxPerImage, "variant-max-per-image", vdef.MaxPerImage, "variants kept of one image, presets not counted; past it, other variants of it are refused (400)")
			fs.Float64Var(&body.VariantsPerMinute, "variant-rate", 120, "new variants (ones not stored yet) one client address may have made a minute; past it, 429 (-1: no limit)")
			fs.DurationVar(&vdef.Timeout, "variant-timeout", vdef.Timeout, "how long making one variant may take, waiting for a turn included; past it, 503")
			uploadExpiry := fs.Duration("upload-expiry", 24*time.Hour, "how long a resumable (tus) upload lives from its creation; not finished by then, it is deleted and GC reclaims what it received")
			return func(ctx context.Context) error {
				log, err := newLogger(e.stderr, *level, *format)
				if err != nil {
					return err
				}
				if m.scrubSample, err = parsePercent(*sample); err != nil {
					return fmt.Errorf("--scrub-sample: %w", err)
				}
				sa.NoPublicUploads = !*publicUploads
				eo.UploadWait, eo.RevealDedup = body.SlotWait, !*hideDedup
				cfg := body
				cfg.PublicURL = *publicURL
				cfg.CORSOrigins = commaList(*corsOrigins)
				for i, o := range cfg.CORSOrigins {
					cfg.CORSOrigins[i] = strings.TrimSuffix(o, "/")
				}
				cfg.CORSMethods, cfg.CORSHeaders = commaList(strings.ToUpper(*corsMethods)), commaList(*corsHeaders)
				if len(cfg.CORSOrigins) > 0 {
					if err := (server.CORSRule{Origins: cfg.CORSOrigins, Methods: cfg.CORSMethods, Headers: cfg.CORSHeaders}).Check(); err != nil {
						return fmt.Errorf("--cors-origins, --cors-methods, --cors-headers: %w", err)
					}
				}
				if cfg.TrustedProxies, err = parsePrefixes(*proxies); err != nil {
					return fmt.Errorf("--trusted-proxies: %w", err)
				}
				if *apis != "all" {
					cfg.APIs = strings.Split(*apis, ",")
					for _, a := range cfg.APIs {
						if !slices.Contains(server.APINames, a) {
							return fmt.Errorf("--apis: %w: %q is not one of %s", errUnknownAPI, a, strings.Join(server.APINames, ", "))
						}
					}
				}
				if *smtpAddr != "" {
					cfg.OceanMedia = oceanmedia.Config{Notify: mail.Sender{Addr: *smtpAddr, From: *smtpFrom}.Send}
				}
				if cfg.NoVariants = !*variants; *variants {
					vc := vdef
					if vc.Sizes, err = parseInts(*variantSizes); err != nil {
						return fmt.Errorf("--variant-sizes: %w", err)
					}
					if vc.Qualities, err = parseInts(*variantQualities); err != nil {
						return fmt.Errorf("--variant-qualities: %w", err)
					}
					if variantPresets != nil {
						vc.Presets = variantPresets
					}
					vc.Eager = commaList(*variantEager)
					if err := vc.Validate(); err != nil {
						return fmt.Errorf("--variant-*: %w", err)
					}
					cfg.Variants = &vc
				}
				sa.UploadTTL = *uploadExpiry
				cfg.StorageAPI = sa
				cfg.CloudStorage.UploadTTL = *uploadExpiry
				if eo.Objects, err = openObjects(ctx, *store, e); err != nil {
					return err
				}
				return serve(ctx, e, log, *data, listeners{api: *listen, metrics: *metricsListen}, shutdown{drain: *drain, grace: *grace}, m, eo, cfg)
			}
		},
	}
}

// listeners are the addresses serve listens on: the APIs', and the
// operators' (/metrics), "" for none.
type listeners struct{ api, metrics string }

// shutdown is how serve stops: drain, the time /readyz says 503 while
// requests are still taken; grace, the time requests in flight then have.
type shutdown struct{ drain, grace time.Duration }

// serve runs the server on the store in data; cfg holds the APIs'
// settings (its Engine, Logger and Registry are filled in here).
func serve(ctx context.Context, e *env, log *slog.Logger, data string, listen listeners, stop shutdown, m maintenance, eo engine.Options, cfg server.Config) error {
	eo.Logger, eo.KeyFile, eo.CacheSize, eo.Index = log, e.keyFile, e.cacheSize, e.index
	eng, err := engine.Open(data, eo)
	if err != nil {
		return err
	}
	defer func() {
		if err := eng.Close(); err != nil && !errors.Is(err, engine.ErrClosed) {
			log.Error("closing the store", "err", err)
		}
	}()
	if n, err := server.SealSecrets(ctx, eng); err != nil {
		return fmt.Errorf("sealing the secrets kept in the index: %w", err)
	} else if n > 0 {
		log.Warn("sealed the signing secrets an earlier version kept in the index in clear; older index files may hold them until compacted: rotate them (cairn user rotate) to be sure", "users", n)
	}
	if err := server.Migrate(ctx, eng); err != nil {
		return fmt.Errorf("migrating the index to this version's layout: %w", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	cfg.Engine, cfg.Logger, cfg.Registry, cfg.Version = eng, log, reg, version()
	srv := server.New(cfg)
	stopAdmin, err := serveAdmin(ctx, adminSocket(data), eng, log)
	if err != nil {
		return err
	}
	defer stopAdmin()
	ln, err := net.Listen("tcp", listen.api)
	if err != nil {
		return err
	}
	var mln net.Listener
	if listen.metrics != "" {
		if mln, err = net.Listen("tcp", listen.metrics); err != nil {
			ln.Close()
			return fmt.Errorf("--metrics-listen: %w", err)
		}
	}
	hs := &http.Server{Handler: srv, ErrorLog: slogErrorLog(log)}
	server.Harden(hs)
	fmt.Fprintf(e.stdout, "cairn: serving http://%s/ with data in %s\n", ln.Addr(), data)
	if mln != nil {
		fmt.Fprintf(e.stdout, "cairn: metrics at http://%s/metrics\n", mln.Addr())
		ms := &http.Server{Handler: srv.MetricsHandler(), ErrorLog: slogErrorLog(log)}
		server.Harden(ms)
		go ms.Serve(mln)
		defer ms.Close()
	}
	if users, err := cloudstorage.NewUsers(eng).List(); err == nil && len(users) == 0 {
		fmt.Fprintf(e.stdout, "cairn: no cloud storage users yet; add one (while this runs) with:\n  cairn user add alice --data %s && cairn user grant alice <bucket> WRITE --data %s\n", data, data)
	}
	log.Info("serving", "addr", ln.Addr().String(), "metrics", listen.metrics, "data", data, "version", version())

	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	mctx, stopMaintenance := context.WithCancel(ctx)
	defer stopMaintenance()
	m.run(mctx, eng, log)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down", "drain", stop.drain, "grace", stop.grace)
	srv.Drain()
	if stop.drain > 0 {
		t := time.NewTimer(stop.drain)
		select {
		case <-t.C:
		case err := <-errc:
			t.Stop()
			return err
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), stop.grace)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		log.Warn("requests still in flight at shutdown were cut off", "err", err)
		hs.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// dataFlag declares --data, shared by every command that opens the
// store, and --key-file, the store's key (see runEnv).
func dataFlag(fs *flag.FlagSet) *string {
	fs.String("key-file", "", "the store's key, which seals the signing secrets kept in its index (default secret.key in the data folder; keep it elsewhere, and backed up, so that a copy of the folder alone grants nothing)")
	fs.Int64("cache-size", 1<<30, "for a store whose segments are in an object store: bytes of segment copies and fetched chunks kept in the data folder; the least recently used are removed past it, and reads fetch what they need from the object store")
	fs.String("index", "", "where the index is: \"\" for the data folder (Pebble), or a PostgreSQL database, postgres://user@host:port/db (its password from PGPASSWORD or ~/.pgpass, so that it is not in the process list); a store stays where it was made")
	fs.String("s3-endpoint", "", "the object store's endpoint (http(s)://host:port), for a store whose segments are in one (default: AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL, else AWS S3); credentials come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, the region from AWS_REGION")
	return fs.String("data", "cairn-data", "the data folder")
}

// storeFlag is --store, for the commands that may make a store.
func storeFlag(fs *flag.FlagSet) *string {
	return fs.String("store", "", "where the segments (the stored bytes) go: \"\" for the data folder, or s3://bucket/prefix for an S3-compatible object store (the data folder then keeps the index and a bounded cache); a store stays where it was made")
}

// errUnknownAPI: --apis names something that is no API.
var errUnknownAPI = errors.New("unknown API")

// parsePrefixes parses comma-separated CIDRs; an address alone is its own
// prefix.
func parsePrefixes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		if a, err := netip.ParseAddr(f); err == nil {
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("%q is neither an address nor a CIDR", f)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// presetFlag collects --variant-preset name=options.
type presetFlag map[string]variant.Spec

func (p *presetFlag) String() string { return "" }

func (p *presetFlag) Set(s string) error {
	name, opts, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return fmt.Errorf("%q is not name=w=…,h=…,fit=…,format=…,q=…", s)
	}
	spec, err := variant.ParsePreset(opts)
	if err != nil {
		return err
	}
	if *p == nil {
		*p = presetFlag{}
	}
	(*p)[name] = spec
	return nil
}

// intList writes ns comma-separated.
func intList(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

// parseInts reads a comma-separated list of numbers ("" is none).
func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range commaList(s) {
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("%q is not a number", f)
		}
		out = append(out, n)
	}
	return out, nil
}
