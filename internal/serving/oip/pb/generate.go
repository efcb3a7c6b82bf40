// Package pb is the generated code of the Open Inference Protocol's gRPC
// service (grpc_predict_v2.proto). Regenerate with `go generate` after
// editing the .proto (protoc 3.21+, protoc-gen-go and protoc-gen-go-grpc on
// PATH); the output is committed, CI does not run protoc.
package pb

//go:generate protoc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative grpc_predict_v2.proto
