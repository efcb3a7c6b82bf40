// Package proxy serves an artifact.Store over MLflow's artifact proxy API
// (mlflow_artifacts.proto), so the official mlflow client uploads, downloads,
// lists and deletes artifacts through `atrium serve` with mlflow-artifacts:/ URIs.
//
// Routes, each under /api/2.0/mlflow-artifacts and /ajax-api/2.0/mlflow-artifacts:
//
//	PUT    /artifacts/{path...}       upload the request body (streamed, size-limited) -> {}
//	GET    /artifacts/{path...}       download (streamed; Range requests when the store can seek)
//	GET    /artifacts?path=<dir>      list direct children -> {"files":[{path (basename), is_dir, file_size}]}
//	DELETE /artifacts/{path...}       delete a file or tree -> {}
//	POST   /mpu/create/{path...}      multipart upload: create, upload parts, complete, abort
//	POST   /mpu/complete/{path...}
//	POST   /mpu/abort/{path...}
//	PUT    /mpu/parts/{upload_id}/{part_number}   (Atrium's part URL, handed out by create)
//	GET    /presigned/{path...}       501: downloads always stream through the server
//
// Errors use MLflow's body {"error_code", "message"}: an invalid path is 400
// INVALID_PARAMETER_VALUE, a missing artifact 404 RESOURCE_DOES_NOT_EXIST, a body
// over the limit 413; a client's mistake is never a 5xx (the client retries those).
package proxy

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/atrium-ml/atrium/internal/platform/artifact"
	"github.com/atrium-ml/atrium/internal/platform/server"
)

// Prefixes under which the API is mounted: the client's and the web UI's.
var Prefixes = []string{"/api/2.0/mlflow-artifacts", "/ajax-api/2.0/mlflow-artifacts"}

// Options configure the API.
type Options struct {
	// MaxUploadBytes bounds one uploaded artifact (or one multipart part). Default 16 GiB.
	MaxUploadBytes int64
	// MaxJSONBytes bounds JSON request bodies (multipart create/complete/abort). Default 1 MiB.
	MaxJSONBytes int64
	// Logger receives internal errors. Default: discard.
	Logger *slog.Logger
	// PublicURL is the absolute URL clients reach the server at
	// ("https://atrium.example.com", with a path when a proxy mounts the
	// server under one; server.public_url of atrium.yaml, validated there).
	// Multipart part URLs are built from it. Empty: from the request's Host
	// header, refused unless it is a plain host[:port].
	PublicURL string
}

func (o *Options) ensureDefaults() {
	if o.MaxUploadBytes == 0 {
		o.MaxUploadBytes = 16 << 30
	}
	if o.MaxJSONBytes == 0 {
		o.MaxJSONBytes = 1 << 20
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// API is the artifact proxy over one store. It implements server.API.
type API struct {
	store artifact.Store
	opts  Options
}

var _ server.API = (*API)(nil)

// New returns the proxy API over store. The caller keeps ownership of store.
func New(store artifact.Store, opts Options) *API {
	opts.ensureDefaults()
	return &API{store: store, opts: opts}
}

// Routes returns the routes under every prefix, each with its permission:
// reading artifacts is MLflow's READ, writing them EDIT, deleting them MANAGE;
// a multipart part is authorized by its upload id.
func (a *API) Routes() []server.Route {
	var routes []server.Route
	for _, p := range Prefixes {
		routes = append(routes,
			server.Route{Pattern: "PUT " + p + "/artifacts/{path...}", Permission: server.Edit, Handler: http.HandlerFunc(a.upload)},
			server.Route{Pattern: "GET " + p + "/artifacts/{path...}", Permission: server.Read, Handler: http.HandlerFunc(a.download)},
			server.Route{Pattern: "GET " + p + "/artifacts", Permission: server.Read, Handler: http.HandlerFunc(a.list)},
			server.Route{Pattern: "DELETE " + p + "/artifacts/{path...}", Permission: server.Manage, Handler: http.HandlerFunc(a.delete)},
			server.Route{Pattern: "POST " + p + "/mpu/create/{path...}", Permission: server.Edit, Handler: http.HandlerFunc(a.mpuCreate)},
			server.Route{Pattern: "POST " + p + "/mpu/complete/{path...}", Permission: server.Edit, Handler: http.HandlerFunc(a.mpuComplete)},
			server.Route{Pattern: "POST " + p + "/mpu/abort/{path...}", Permission: server.Edit, Handler: http.HandlerFunc(a.mpuAbort)},
			// The upload id in a part's URL is its credential, as a presigned
			// S3 URL's signature is: MLflow's client PUTs parts with a bare
			// requests.put, sending no Authorization header. Only an EDIT
			// caller gets an id (create), and an unknown id is refused before
			// a byte of the body is stored.
			server.Route{Pattern: "PUT " + p + "/mpu/parts/{upload_id}/{part_number}", Permission: server.Public, Handler: http.HandlerFunc(a.mpuPart)},
			server.Route{Pattern: "GET " + p + "/presigned/{path...}", Permission: server.Read, Handler: http.HandlerFunc(a.presigned)},
		)
	}
	return routes
}

// Errors of the API beyond the store's sentinels.
var (
	errTooLarge   = errors.New("request body too large")
	errBadRequest = errors.New("malformed request")
	// errInvalidParam: a well-formed request with a missing or out-of-range field
	// (num_parts, a part number, the multipart path), INVALID_PARAMETER_VALUE as
	// MLflow's request-schema checks answer.
	errInvalidParam   = errors.New("invalid parameter value")
	errNotImplemented = errors.New("not implemented")
)

// apiError is an error with the MLflow error code and HTTP status it maps to.
type apiError struct {
	status int
	code   string
}

// classify maps an error to its HTTP status and MLflow error code. It is the one
// place where errors become statuses.
func classify(err error) apiError {
	var maxBytes *http.MaxBytesError
	switch {
	case errors.Is(err, artifact.ErrInvalidPath), errors.Is(err, artifact.ErrConflict), errors.Is(err, errInvalidParam):
		return apiError{http.StatusBadRequest, "INVALID_PARAMETER_VALUE"}
	case errors.Is(err, errBadRequest):
		return apiError{http.StatusBadRequest, "BAD_REQUEST"}
	case errors.Is(err, artifact.ErrNotFound):
		return apiError{http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST"}
	case errors.As(err, &maxBytes), errors.Is(err, errTooLarge):
		return apiError{http.StatusRequestEntityTooLarge, "INVALID_PARAMETER_VALUE"}
	case errors.Is(err, errNotImplemented):
		return apiError{http.StatusNotImplemented, "NOT_IMPLEMENTED"}
	}
	return apiError{http.StatusInternalServerError, "INTERNAL_ERROR"}
}

func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := classify(err)
	msg := err.Error()
	if e.status == http.StatusInternalServerError {
		if r.Context().Err() != nil {
			// The request ended under the handler: its body stopped arriving
			// (server.body_timeout), its deadline passed, or the client went
			// away. It is still answered: net/http answers a handler that
			// writes nothing with 200, which would tell a client still
			// reading, and the audit log, that a failed upload succeeded.
			a.opts.Logger.Info("artifact proxy: request ended early", "method", r.Method, "path", r.URL.Path, "request_id", server.RequestID(r.Context()), "err", err)
			w.Header().Set("Connection", "close")
			server.WriteJSON(w, http.StatusRequestTimeout, map[string]string{"error_code": "REQUEST_TIMEOUT",
				"message": "the request ended before it completed: its body stopped arriving or its deadline passed (request id " + server.RequestID(r.Context()) + ")"})
			return
		}
		// The filesystem's words (paths, errnos) stay in the log.
		a.opts.Logger.Error("artifact proxy", "method", r.Method, "path", r.URL.Path, "request_id", server.RequestID(r.Context()), "err", err)
		msg = server.InternalErrorMessage(r.Context())
	}
	server.WriteJSON(w, e.status, map[string]string{"error_code": e.code, "message": clipPaths(r, msg)})
}

// clipPaths bounds what msg echoes of the request's artifact paths (the
// URL's {path...} and the list's ?path=): messages name them, with %s and
// %q, in the proxy's words and the store's.
func clipPaths(r *http.Request, msg string) string {
	for _, p := range []string{pathValue(r), r.URL.Query().Get("path")} {
		if len(p) > server.MaxEchoedBytes {
			msg = strings.ReplaceAll(msg, p, server.Clip(p))
		}
	}
	return server.ClipQuoted(msg)
}

// pathValue returns the artifact path of the request's {path...} wildcard. The
// mux has decoded it once; CleanPath (in the store) rejects anything still encoded.
func pathValue(r *http.Request) string { return r.PathValue("path") }

func (a *API) upload(w http.ResponseWriter, r *http.Request) {
	p := pathValue(r)
	if _, err := artifact.CleanPath(p); err != nil {
		a.writeError(w, r, err)
		return
	}
	if r.ContentLength > a.opts.MaxUploadBytes {
		a.writeError(w, r, fmt.Errorf("%w: upload of %s is %d bytes, the limit is %d", errTooLarge, p, r.ContentLength, a.opts.MaxUploadBytes))
		return
	}
	body := http.MaxBytesReader(w, r.Body, a.opts.MaxUploadBytes)
	if err := a.store.Put(r.Context(), p, body); err != nil {
		a.writeError(w, r, fmt.Errorf("upload %s: %w", p, err))
		return
	}
	server.WriteJSON(w, http.StatusOK, struct{}{})
}

// textTypes are served as text/plain, as MLflow does: anything a browser could
// run (HTML, SVG, JavaScript) is never served with its own type.
var textTypes = map[string]bool{
	".txt": true, ".log": true, ".yaml": true, ".yml": true, ".json": true, ".md": true, ".csv": true,
	".tsv": true, ".py": true, ".js": true, ".html": true, ".htm": true, ".svg": true, ".xml": true,
	".toml": true, ".ini": true, ".cfg": true, ".conf": true, ".properties": true, ".sh": true,
}

// contentType guesses a download's type from its name. Names without an
// extension (MLmodel, MLproject, requirements) are text.
func contentType(name string) string {
	ext := strings.ToLower(path.Ext(name))
	if ext == "" || textTypes[ext] {
		return "text/plain; charset=utf-8"
	}
	if t := mime.TypeByExtension(ext); t != "" && !strings.Contains(t, "html") && !strings.Contains(t, "script") && !strings.Contains(t, "svg") {
		return t
	}
	return "application/octet-stream"
}

func (a *API) download(w http.ResponseWriter, r *http.Request) {
	p := pathValue(r)
	rc, err := a.store.Get(r.Context(), p)
	if err != nil {
		a.writeError(w, r, fmt.Errorf("download %s: %w", p, err))
		return
	}
	defer rc.Close()
	name := path.Base(p)
	h := w.Header()
	h.Set("Content-Type", contentType(name))
	// Always an attachment, never rendered on the server's origin (stored XSS).
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	if rs, ok := rc.(io.ReadSeeker); ok {
		// Seekable objects get Content-Length, Range and conditional requests.
		http.ServeContent(w, r, name, time.Time{}, rs) // no Last-Modified: backends differ
		return
	}
	w.WriteHeader(http.StatusOK)
	if _, err := io.Copy(w, rc); err != nil && r.Context().Err() == nil {
		a.opts.Logger.Warn("artifact download interrupted", "path", p, "err", err)
	}
}

// fileInfo is MLflow's FileInfo message. file_size is absent for directories.
type fileInfo struct {
	Path     string `json:"path"`
	IsDir    bool   `json:"is_dir"`
	FileSize *int64 `json:"file_size,omitempty"`
}

type listResponse struct {
	Files []fileInfo `json:"files,omitempty"`
}

func (a *API) list(w http.ResponseWriter, r *http.Request) {
	// r.URL.Query() drops pairs it cannot parse ("path=a;b", a bad %-escape),
	// and an absent path lists the root: the client would get the wrong listing.
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		a.writeError(w, r, fmt.Errorf("%w: query string: %v", errInvalidParam, err))
		return
	}
	dir := q.Get("path")
	fis, err := a.store.List(r.Context(), dir)
	if err != nil {
		a.writeError(w, r, fmt.Errorf("list %s: %w", dir, err))
		return
	}
	resp := listResponse{Files: make([]fileInfo, 0, len(fis))}
	for _, fi := range fis {
		// MLflow answers basenames; the client joins them to the path it asked for.
		f := fileInfo{Path: path.Base(fi.Path), IsDir: fi.IsDir}
		if !fi.IsDir {
			size := fi.Size
			f.FileSize = &size
		}
		resp.Files = append(resp.Files, f)
	}
	server.WriteJSON(w, http.StatusOK, resp)
}

func (a *API) delete(w http.ResponseWriter, r *http.Request) {
	p := pathValue(r)
	if err := a.store.Delete(r.Context(), p); err != nil {
		a.writeError(w, r, fmt.Errorf("delete %s: %w", p, err))
		return
	}
	server.WriteJSON(w, http.StatusOK, struct{}{})
}

// decodeJSON reads a size-limited JSON body into v. Unknown fields are ignored:
// newer clients send fields older servers do not know.
func (a *API) decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	body := http.MaxBytesReader(w, r.Body, a.opts.MaxJSONBytes)
	if err := json.NewDecoder(body).Decode(v); err != nil {
		var maxBytes *http.MaxBytesError
		if errors.As(err, &maxBytes) {
			return fmt.Errorf("%w: JSON body over %d bytes", errTooLarge, a.opts.MaxJSONBytes)
		}
		return fmt.Errorf("%w: JSON body: %v", errBadRequest, err)
	}
	return nil
}

func (a *API) presigned(w http.ResponseWriter, r *http.Request) {
	// MLflow's exact message: its client falls back to streaming on a 501.
	a.writeError(w, r, fmt.Errorf("%w: Multipart download is not supported for the current artifact repository", errNotImplemented))
}
