package auth

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/atrium-ml/atrium/internal/platform/server"
)

// GrantsAPI serves MLflow 3's permission endpoints of its basic-auth app, so
// that mlflow.server.auth.client.AuthServiceClient's grant_user_permission,
// revoke_user_permission and get_user_permission work against `atrium
// serve`, for experiments and registered models. Admins only, like
// `atrium user grant`.
type GrantsAPI struct {
	store      *Store
	decode     Decoder
	defaultLvl Level
	log        *slog.Logger
}

// NewGrantsAPI returns the API over store; decode reads requests as the
// MLflow API does; defaultLevel is the guard's DefaultPermission (for
// get_user_permission's effective answer); log receives database errors.
func NewGrantsAPI(store *Store, decode Decoder, defaultLevel Level, log *slog.Logger) *GrantsAPI {
	return &GrantsAPI{store: store, decode: decode, defaultLvl: defaultLevel, log: log}
}

var _ server.API = (*GrantsAPI)(nil)

// Routes implements server.API.
func (a *GrantsAPI) Routes() []server.Route {
	var rs []server.Route
	for _, p := range []string{"/api/3.0/mlflow", "/ajax-api/3.0/mlflow"} {
		rs = append(rs,
			server.Route{Pattern: "POST " + p + "/users/permissions/grant", Permission: server.Admin, Handler: http.HandlerFunc(a.grant)},
			server.Route{Pattern: "POST " + p + "/users/permissions/revoke", Permission: server.Admin, Handler: http.HandlerFunc(a.revoke)},
			server.Route{Pattern: "GET " + p + "/users/permissions/get", Permission: server.Admin, Handler: http.HandlerFunc(a.get)},
		)
	}
	return rs
}

type grantRequest struct {
	Username     string `json:"username"`
	ResourceType string `json:"resource_type"`
	ResourceID   string `json:"resource_id"`
	Permission   string `json:"permission"`
}

// read decodes the request and its resource.
func (a *GrantsAPI) read(r *http.Request) (grantRequest, Resource, error) {
	var req grantRequest
	if err := a.decode(r, &req); err != nil {
		return req, Resource{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	switch {
	case req.Username == "":
		return req, Resource{}, fmt.Errorf("%w: missing value for required parameter 'username'", ErrInvalid)
	case req.ResourceID == "":
		return req, Resource{}, fmt.Errorf("%w: missing value for required parameter 'resource_id'", ErrInvalid)
	}
	k := Kind(req.ResourceType)
	if k != KindExperiment && k != KindModel {
		return req, Resource{}, fmt.Errorf("%w: resource_type %s: Atrium grants permissions on %s and %s", ErrInvalid, server.Quote(req.ResourceType), KindExperiment, KindModel)
	}
	return req, Resource{k, req.ResourceID}, nil
}

func (a *GrantsAPI) grant(w http.ResponseWriter, r *http.Request) {
	req, res, err := a.read(r)
	if err == nil {
		var l Level
		if l, err = ParseLevel(req.Permission); err == nil {
			err = a.store.SetGrant(r.Context(), req.Username, res, l)
		}
	}
	a.answer(w, r, struct{}{}, err)
}

func (a *GrantsAPI) revoke(w http.ResponseWriter, r *http.Request) {
	req, res, err := a.read(r)
	if err == nil {
		err = a.store.DeleteGrant(r.Context(), req.Username, res)
	}
	a.answer(w, r, struct{}{}, err)
}

// get answers the user's effective permission on the resource: its grant,
// else its role capped by the default permission, as the guard decides.
func (a *GrantsAPI) get(w http.ResponseWriter, r *http.Request) {
	req, res, err := a.read(r)
	if err != nil {
		a.answer(w, r, nil, err)
		return
	}
	l, err := a.store.Grant(r.Context(), req.Username, res)
	if err == nil && l == 0 {
		var role Role
		if role, err = a.store.userRole(r.Context(), req.Username); err == nil {
			l = roleLevel(role)
			if a.defaultLvl != 0 && a.defaultLvl < l && role != Admin {
				l = a.defaultLvl
			}
		}
	}
	a.answer(w, r, map[string]any{"allowed": l >= LevelRead, "permission": l.String()}, err)
}

func (a *GrantsAPI) answer(w http.ResponseWriter, r *http.Request, v any, err error) {
	switch {
	case err == nil:
		server.WriteJSON(w, http.StatusOK, v)
	case errors.Is(err, ErrInvalid):
		server.WriteError(w, r, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", err.Error())
	case errors.Is(err, ErrNotFound):
		server.WriteError(w, r, http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", err.Error())
	default:
		// The database's words stay in the log.
		a.log.Error("permissions API", "path", r.URL.Path, "request_id", server.RequestID(r.Context()), "err", err)
		server.WriteError(w, r, http.StatusServiceUnavailable, "TEMPORARILY_UNAVAILABLE", "permissions cannot be changed now (request id "+server.RequestID(r.Context())+")")
	}
}

// roleLevel is the level a role holds where it has no grant.
func roleLevel(r Role) Level {
	switch r {
	case Reader:
		return LevelRead
	case Editor:
		return LevelEdit
	case Admin:
		return LevelManage
	}
	return NoPermissions
}
