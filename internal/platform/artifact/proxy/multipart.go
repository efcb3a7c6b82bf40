package proxy

import (
	"fmt"
	"net/http"
	"net/netip"
	"path"
	"strconv"
	"strings"

	"github.com/atrium-ml/atrium/internal/platform/artifact"
	"github.com/atrium-ml/atrium/internal/platform/server"
)

// MLflow's multipart upload, for stores that implement artifact.Multipart. The
// client sends {path: <its local file>, num_parts}; the object goes to
// <URL path>/<basename of that file>, as in MLflow's handlers. Create answers
// one credential per part whose URL is this server's part endpoint; the upload
// id in it is the part upload's only credential (the client sends parts with a
// bare requests.put), so ids are random and 128 bits long. For stores without
// the capability every call answers 501 with MLflow's exact message, on which
// the client falls back to a single streamed PUT.

// unsupportedMultipart is _UnsupportedMultipartUploadException.MESSAGE, which the
// client matches by prefix.
const unsupportedMultipart = "Multipart upload is not supported for the current artifact repository"

type mpuRequest struct {
	Path     string `json:"path"`
	NumParts int    `json:"num_parts"`
	UploadID string `json:"upload_id"`
	Parts    []struct {
		PartNumber int    `json:"part_number"`
		ETag       string `json:"etag"`
	} `json:"parts"`
}

type credential struct {
	URL        string            `json:"url"`
	PartNumber int               `json:"part_number"`
	Headers    map[string]string `json:"headers"`
}

type createResponse struct {
	UploadID    string       `json:"upload_id"`
	Credentials []credential `json:"credentials"`
}

// mpuTarget decodes the request and returns the store, the request and the
// destination of the object.
func (a *API) mpuTarget(w http.ResponseWriter, r *http.Request) (artifact.Multipart, *mpuRequest, string, error) {
	mp, ok := a.store.(artifact.Multipart)
	if !ok {
		return nil, nil, "", fmt.Errorf("%w: %s", errNotImplemented, unsupportedMultipart)
	}
	dir := pathValue(r)
	if _, err := artifact.CleanPath(dir); err != nil {
		return nil, nil, "", err
	}
	var req mpuRequest
	if err := a.decodeJSON(w, r, &req); err != nil {
		return nil, nil, "", err
	}
	// "path" is the client's local file name: only its base name is used. Split
	// on both separators so a Windows client's C:\dir\model.pkl names model.pkl.
	name := req.Path[strings.LastIndexAny(req.Path, `/\`)+1:]
	if name == "" {
		return nil, nil, "", fmt.Errorf("%w: field path: want the uploaded file's name, got %q", errInvalidParam, req.Path)
	}
	if _, err := artifact.CleanPath(name); err != nil || name == "." {
		return nil, nil, "", fmt.Errorf("%w: field path: file name %q", artifact.ErrInvalidPath, name)
	}
	return mp, &req, path.Join(dir, name), nil
}

func (a *API) mpuCreate(w http.ResponseWriter, r *http.Request) {
	mp, req, dest, err := a.mpuTarget(w, r)
	if err == nil && (req.NumParts < 1 || req.NumParts > artifact.MaxParts) {
		err = fmt.Errorf("%w: field num_parts: %d, want 1 to %d", errInvalidParam, req.NumParts, artifact.MaxParts)
	}
	var base, id string
	if err == nil {
		base, err = a.partBaseURL(r) // before the upload exists: a refusal leaves nothing behind
	}
	if err == nil {
		id, err = mp.CreateMultipart(r.Context(), dest)
	}
	if err != nil {
		a.writeError(w, r, fmt.Errorf("create multipart upload: %w", err))
		return
	}
	base += "/mpu/parts/" + id + "/"
	resp := createResponse{UploadID: id, Credentials: make([]credential, req.NumParts)}
	for i := range resp.Credentials {
		resp.Credentials[i] = credential{URL: base + strconv.Itoa(i+1), PartNumber: i + 1, Headers: map[string]string{}}
	}
	server.WriteJSON(w, http.StatusOK, resp)
}

// partBaseURL is the absolute URL of the API prefix the request came in on:
// under Options.PublicURL when it is set, else at the request's Host (and
// X-Forwarded-Proto), which must be a plain host name or address with an
// optional port. The client PUTs each part to the URL it is handed, with the
// part's bytes and no credential, so the URL decides where the model's bytes
// go: a Host header that smuggles a user, a path or a second host into the
// URL is refused rather than echoed.
func (a *API) partBaseURL(r *http.Request) (string, error) {
	prefix := r.URL.Path[:strings.Index(r.URL.Path, "/mpu/create/")]
	if a.opts.PublicURL != "" {
		return strings.TrimSuffix(a.opts.PublicURL, "/") + prefix, nil
	}
	if !validHost(r.Host) {
		return "", fmt.Errorf("%w: Host header %s is not a host name or IP address with an optional port, from which part URLs are built; "+
			"set server.public_url in atrium.yaml to the URL clients reach the server at", errInvalidParam, server.Quote(r.Host))
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := r.Header.Get("X-Forwarded-Proto"); p == "http" || p == "https" {
		scheme = p
	}
	return scheme + "://" + r.Host + prefix, nil
}

// validHost reports whether hostport is a DNS name, an IPv4 address or a
// bracketed IPv6 address, with an optional numeric port: nothing that would
// change the meaning of the URL it is put in (no '@', '/', '?', '#', spaces).
func validHost(hostport string) bool {
	host, port := hostport, ""
	if i := strings.LastIndexByte(hostport, ':'); i >= 0 && !strings.HasSuffix(hostport, "]") {
		host, port = hostport[:i], hostport[i+1:]
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || port[0] == '+' {
			return false
		}
	}
	if strings.HasPrefix(host, "[") {
		ip, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
		return err == nil && ip.Is6() && strings.HasSuffix(host, "]") && ip.Zone() == ""
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	host = strings.TrimSuffix(host, ".")
	if host == "" || len(host) > 253 {
		return false
	}
	for label := range strings.SplitSeq(host, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range []byte(label) {
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

func (a *API) mpuPart(w http.ResponseWriter, r *http.Request) {
	mp, ok := a.store.(artifact.Multipart)
	if !ok {
		a.writeError(w, r, fmt.Errorf("%w: %s", errNotImplemented, unsupportedMultipart))
		return
	}
	n, err := strconv.Atoi(r.PathValue("part_number"))
	if err != nil || n < 1 || n > artifact.MaxParts {
		a.writeError(w, r, fmt.Errorf("%w: part number %q, want an integer from 1 to %d", errInvalidParam, r.PathValue("part_number"), artifact.MaxParts))
		return
	}
	if r.ContentLength > a.opts.MaxUploadBytes {
		a.writeError(w, r, fmt.Errorf("%w: part of %d bytes, the limit is %d", errTooLarge, r.ContentLength, a.opts.MaxUploadBytes))
		return
	}
	etag, err := mp.PutPart(r.Context(), r.PathValue("upload_id"), n, http.MaxBytesReader(w, r.Body, a.opts.MaxUploadBytes))
	if err != nil {
		a.writeError(w, r, fmt.Errorf("upload part %d: %w", n, err))
		return
	}
	w.Header().Set("ETag", strconv.Quote(etag))
	server.WriteJSON(w, http.StatusOK, struct{}{})
}

func (a *API) mpuComplete(w http.ResponseWriter, r *http.Request) {
	mp, req, dest, err := a.mpuTarget(w, r)
	if err == nil {
		parts := make([]artifact.Part, len(req.Parts))
		for i, p := range req.Parts {
			// ETags travel quoted in headers (RFC 9110); the client echoes them as sent.
			parts[i] = artifact.Part{Number: p.PartNumber, ETag: strings.Trim(p.ETag, `"`)}
		}
		err = mp.CompleteMultipart(r.Context(), dest, req.UploadID, parts)
	}
	if err != nil {
		a.writeError(w, r, fmt.Errorf("complete multipart upload: %w", err))
		return
	}
	server.WriteJSON(w, http.StatusOK, struct{}{})
}

func (a *API) mpuAbort(w http.ResponseWriter, r *http.Request) {
	mp, req, dest, err := a.mpuTarget(w, r)
	if err == nil {
		err = mp.AbortMultipart(r.Context(), dest, req.UploadID)
	}
	if err != nil {
		a.writeError(w, r, fmt.Errorf("abort multipart upload: %w", err))
		return
	}
	server.WriteJSON(w, http.StatusOK, struct{}{})
}
