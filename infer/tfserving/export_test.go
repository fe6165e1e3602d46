package tfserving

import "github.com/inferops/inferops/infer/tfpb"

// PredictionStub is the generated stub over the client's router, so a
// benchmark can send the very request a bare gRPC connection sends and
// measure the routing alone.
func (c *Client) PredictionStub() tfpb.PredictionServiceClient { return c.predict }
