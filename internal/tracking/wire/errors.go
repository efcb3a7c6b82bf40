// Package wire is MLflow's REST wire format as Atrium serves it, shared by the
// tracking and registry APIs: the error body {"error_code","message"} and the one
// mapping from error code to HTTP status, request decoding (GET fields from the
// query string with repeated keys, POST/PATCH/DELETE fields from a JSON body,
// int64 as numbers or strings, unknown fields ignored), page tokens, and routing.
//
// Store code returns *Error values built with Errorf (or the helpers) so the
// message a user sees is MLflow's; anything else that reaches a handler is an
// internal error (500, which the client retries).
package wire

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/atrium-ml/atrium/internal/platform/meta"
	"github.com/atrium-ml/atrium/internal/platform/server"
)

// Code is an MLflow error code (databricks_pb2.ErrorCode name). The Python client
// branches on it, not on the HTTP status.
type Code string

// The MLflow error codes Atrium returns.
const (
	InvalidParameterValue Code = "INVALID_PARAMETER_VALUE"
	BadRequest            Code = "BAD_REQUEST"
	ResourceDoesNotExist  Code = "RESOURCE_DOES_NOT_EXIST"
	ResourceAlreadyExists Code = "RESOURCE_ALREADY_EXISTS"
	EndpointNotFound      Code = "ENDPOINT_NOT_FOUND"
	InvalidState          Code = "INVALID_STATE"
	InternalError         Code = "INTERNAL_ERROR"
	// TemporarilyUnavailable: the metadata database did not answer (503, which
	// the client retries with backoff).
	TemporarilyUnavailable Code = "TEMPORARILY_UNAVAILABLE"
	NotImplemented         Code = "NOT_IMPLEMENTED"
)

// Status is the HTTP status MLflow's server answers for a code. It is the only
// place the tracking and registry APIs map errors to statuses. Client mistakes
// are 4xx: the client retries 429 and 5xx with backoff, so a deterministic error
// must never be one of those.
func Status(c Code) int {
	switch c {
	case InvalidParameterValue, BadRequest, ResourceAlreadyExists:
		return http.StatusBadRequest
	case ResourceDoesNotExist, EndpointNotFound:
		return http.StatusNotFound
	case NotImplemented:
		return http.StatusNotImplemented
	case TemporarilyUnavailable:
		return http.StatusServiceUnavailable
	default:
		// INVALID_STATE is a 500 in MLflow too (a broken invariant in stored data).
		return http.StatusInternalServerError
	}
}

// Error is an error with an MLflow code and the message the client shows.
type Error struct {
	Code    Code
	Message string
	// cause, when set, is the error behind this one (see Unwrap).
	cause error
}

func (e *Error) Error() string { return e.Message }

// Unwrap returns the error the answer was made from, if any, so that callers
// can tell causes apart with errors.As (a request body over its limit is an
// *http.MaxBytesError).
func (e *Error) Unwrap() error { return e.cause }

// Is makes errors.Is(err, ErrNotFound) true for every *Error with that code:
// the sentinels below have an empty Message and match by code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Message == "" && t.Code == e.Code
}

// Sentinels for errors.Is checks by code.
var (
	ErrInvalid       = &Error{Code: InvalidParameterValue}
	ErrNotFound      = &Error{Code: ResourceDoesNotExist}
	ErrAlreadyExists = &Error{Code: ResourceAlreadyExists}
	ErrInvalidState  = &Error{Code: InvalidState}
)

// Prose is server-written text formatted into a message (an explanation, a
// list of allowed values): Errorf formats it whole, where it cuts strings.
type Prose string

// Errorf builds an *Error with a formatted message. String arguments are the
// request's names, ids and values: each is cut to server.MaxEchoedBytes
// (server.Clip), so that an answer never echoes unbounded input whatever
// the call site passes. Text the server wrote goes in as Prose.
func Errorf(code Code, format string, args ...any) *Error {
	copied := false
	for i, a := range args {
		if s, ok := a.(string); ok && len(s) > server.MaxEchoedBytes {
			if !copied {
				args, copied = append([]any(nil), args...), true // the caller's slice stays as it was
			}
			args[i] = server.Clip(s)
		}
	}
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalidf is an INVALID_PARAMETER_VALUE error (400).
func Invalidf(format string, args ...any) *Error {
	return Errorf(InvalidParameterValue, format, args...)
}

// NotFoundf is a RESOURCE_DOES_NOT_EXIST error (404).
func NotFoundf(format string, args ...any) *Error {
	return Errorf(ResourceDoesNotExist, format, args...)
}

// Existsf is a RESOURCE_ALREADY_EXISTS error (400).
func Existsf(format string, args ...any) *Error {
	return Errorf(ResourceAlreadyExists, format, args...)
}

// body is MLflow's error response.
type body struct {
	ErrorCode Code   `json:"error_code"`
	Message   string `json:"message"`
}

// WriteError writes err in MLflow's format. Errors that are not *Error are
// internal: they are logged and answered with a generic INTERNAL_ERROR.
func WriteError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	var we *Error
	if !errors.As(err, &we) && meta.IsInvalidData(err) {
		// The engine refused a value of the request (a number out of range,
		// text too long for an index).
		we = Invalidf("Invalid value in the request: %s", engineMessage(err))
	}
	if we == nil && meta.IsUnavailable(err) && r.Context().Err() != context.Canceled {
		if log != nil {
			log.Warn("mlflow api: metadata database unavailable", "method", r.Method, "path", r.URL.Path, "request_id", server.RequestID(r.Context()), "err", err)
		}
		we = &Error{Code: TemporarilyUnavailable, Message: "the metadata database did not answer (request id " + server.RequestID(r.Context()) + "); try again later"}
	}
	if we == nil {
		// The database's words stay in the log.
		if log != nil {
			log.Error("mlflow api: internal error", "method", r.Method, "path", r.URL.Path, "request_id", server.RequestID(r.Context()), "err", err)
		}
		we = &Error{Code: InternalError, Message: server.InternalErrorMessage(r.Context())}
	}
	server.WriteJSON(w, Status(we.Code), body{ErrorCode: we.Code, Message: we.Message})
}

// engineMessage is what the engine said about a value it refused: PostgreSQL's
// message without its "ERROR:" and SQLSTATE decorations, else the whole error.
// (meta wraps engine errors with two %w verbs, so errors.Unwrap finds nothing.)
func engineMessage(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Message
	}
	return err.Error()
}

// Wrap adds context to an internal error and passes *Error values through
// untouched, so the client sees MLflow's message rather than a wrapped one.
func Wrap(err error, format string, args ...any) error {
	var we *Error
	if err == nil || errors.As(err, &we) {
		return err
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}
