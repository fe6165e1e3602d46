package modelserver

import (
	"context"
	"time"

	"github.com/inferops/inferops/infer/tensor"
	"github.com/inferops/inferops/infer/tfpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// grpcService implements TF Serving's PredictionService and ModelService.
type grpcService struct {
	tfpb.UnimplementedPredictionServiceServer
	tfpb.UnimplementedModelServiceServer
	s *Server
}

// maxMessage is TF's cap on gRPC error messages (grpc_status_util.cc).
const maxMessage = 1024

func truncate(err error) error {
	st, ok := status.FromError(err)
	if !ok || len(st.Message()) <= maxMessage {
		return err
	}
	return status.Error(st.Code(), st.Message()[:maxMessage]+"...TRUNCATED")
}

func (g *grpcService) Predict(ctx context.Context, req *tfpb.PredictRequest) (*tfpb.PredictResponse, error) {
	start := time.Now()
	resp, err := g.predict(ctx, req)
	g.s.metrics.request(req.GetModelSpec().GetName(), "Predict", "GRPC", status.Code(err), time.Since(start))
	return resp, truncate(err)
}

func (g *grpcService) predict(ctx context.Context, req *tfpb.PredictRequest) (*tfpb.PredictResponse, error) {
	sv, err := g.s.models.lookup(req.GetModelSpec())
	if err != nil {
		return nil, err
	}
	sd, err := sv.ld.signature(req.GetModelSpec().GetSignatureName())
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(req.GetInputs()))
	for n := range req.GetInputs() {
		names = append(names, n)
	}
	if err := sv.ld.checkInputs(sd, names); err != nil {
		return nil, err
	}
	if err := sv.ld.checkOutputFilter(sd, req.GetOutputFilter()); err != nil {
		return nil, err
	}
	// A decoded tensor may hold no more values than a maximal message of
	// float32s could carry (one float_val may "fill" any shape).
	in := make(map[string]*tensor.Tensor, len(names))
	for _, n := range names {
		t, err := tensor.DecodeTensorMax(req.GetInputs()[n], int64(g.s.cfg.MaxMessageBytes/4))
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "tensor parsing error: %s", n)
		}
		in[n] = &t
	}
	rows, err := sv.ld.checkTensors(sd, in)
	if err != nil {
		return nil, err
	}
	out, err := g.s.predict(ctx, sv, "Predict", sd, in, rows, req.GetOutputFilter())
	if err != nil {
		return nil, err
	}
	sig := req.GetModelSpec().GetSignatureName()
	if sig == "" {
		sig = signatureName
	}
	resp := &tfpb.PredictResponse{
		ModelSpec: &tfpb.ModelSpec{Name: sv.name, VersionChoice: &tfpb.ModelSpec_Version{Version: wrapperspb.Int64(sv.version)}, SignatureName: sig},
		Outputs:   make(map[string]*tfpb.TensorProto, len(out)),
	}
	for alias, t := range out {
		tp := &tfpb.TensorProto{}
		if err := tensor.EncodeTyped(tp, t); err != nil { // typed fields, as TF answers by default
			return nil, status.Errorf(codes.Internal, "output %s: %v", alias, err)
		}
		resp.Outputs[alias] = tp
	}
	return resp, nil
}

func (g *grpcService) GetModelMetadata(_ context.Context, req *tfpb.GetModelMetadataRequest) (*tfpb.GetModelMetadataResponse, error) {
	resp, err := g.s.metadata(req)
	return resp, truncate(err)
}

// metadata is shared by gRPC and REST.
func (s *Server) metadata(req *tfpb.GetModelMetadataRequest) (*tfpb.GetModelMetadataResponse, error) {
	sv, err := s.models.lookup(req.GetModelSpec())
	if err != nil {
		return nil, err
	}
	if len(req.GetMetadataField()) == 0 {
		return nil, status.Error(codes.InvalidArgument, "GetModelMetadataRequest must specify at least one metadata_field")
	}
	for _, f := range req.GetMetadataField() {
		if f != "signature_def" {
			return nil, status.Errorf(codes.InvalidArgument, "Metadata field %s is not supported", f)
		}
	}
	defs, err := anypb.New(&tfpb.SignatureDefMap{SignatureDef: sv.ld.sigs})
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &tfpb.GetModelMetadataResponse{
		ModelSpec: &tfpb.ModelSpec{Name: sv.name, VersionChoice: &tfpb.ModelSpec_Version{Version: wrapperspb.Int64(sv.version)}},
		Metadata:  map[string]*anypb.Any{"signature_def": defs},
	}, nil
}

func (g *grpcService) GetModelStatus(_ context.Context, req *tfpb.GetModelStatusRequest) (*tfpb.GetModelStatusResponse, error) {
	resp, err := g.s.modelStatus(req.GetModelSpec())
	return resp, truncate(err)
}

// modelStatus is shared by gRPC and REST. Labels are ignored, as in 2.12.
func (s *Server) modelStatus(spec *tfpb.ModelSpec) (*tfpb.GetModelStatusResponse, error) {
	if spec == nil {
		return nil, status.Error(codes.InvalidArgument, "Missing ModelSpec")
	}
	if spec.GetName() == "" {
		return nil, status.Error(codes.InvalidArgument, "ModelSpec has no name specified.")
	}
	ver, has := int64(0), false
	if v, ok := spec.GetVersionChoice().(*tfpb.ModelSpec_Version); ok {
		ver, has = v.Version.GetValue(), true
	}
	rows, err := s.models.status(spec.GetName(), ver, has)
	if err != nil {
		return nil, err
	}
	resp := &tfpb.GetModelStatusResponse{}
	for _, r := range rows {
		resp.ModelVersionStatus = append(resp.ModelVersionStatus, &tfpb.ModelVersionStatus{
			Version: r.Version,
			State:   r.State,
			Status:  &tfpb.StatusProto{ErrorCode: tfpb.Code(r.Code), ErrorMessage: r.Message},
		})
	}
	return resp, nil
}

func (g *grpcService) HandleReloadConfigRequest(ctx context.Context, req *tfpb.ReloadConfigRequest) (*tfpb.ReloadConfigResponse, error) {
	if err := g.s.models.apply(ctx, req.GetConfig(), false); err != nil {
		st := status.Convert(err)
		g.s.cfg.Logger.Warn("reload config refused", "code", st.Code(), "err", st.Message())
		return nil, truncate(err)
	}
	g.s.cfg.Logger.Info("model config reloaded", "models", len(req.GetConfig().GetModelConfigList().GetConfig()))
	return &tfpb.ReloadConfigResponse{Status: &tfpb.StatusProto{ErrorCode: tfpb.Code_OK}}, nil
}
