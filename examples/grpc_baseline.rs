//! The gRPC baseline for benches/load.sh: Envoy's Authorization service on the same tonic
//! stack as verdict, doing no policy work. It decodes the CheckRequest (tonic does) and answers
//! OK, so the difference to verdict is the input document, the decision core and the response.
//!
//! cargo run --release --example grpc_baseline -- 127.0.0.1:9292

use envoy_types::pb::envoy::service::auth::v3::authorization_server::{
    Authorization, AuthorizationServer,
};
use envoy_types::pb::envoy::service::auth::v3::{CheckRequest, CheckResponse};
use envoy_types::pb::google::rpc;
use tonic::{Request, Response, Status};

struct Allow;

#[tonic::async_trait]
impl Authorization for Allow {
    async fn check(
        &self,
        request: Request<CheckRequest>,
    ) -> Result<Response<CheckResponse>, Status> {
        let code = if request.get_ref().attributes.is_some() {
            0
        } else {
            7
        };
        Ok(Response::new(CheckResponse {
            status: Some(rpc::Status {
                code,
                ..rpc::Status::default()
            }),
            ..CheckResponse::default()
        }))
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9292".into())
        .parse()?;
    tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .add_service(AuthorizationServer::new(Allow))
        .serve(addr)
        .await?;
    Ok(())
}
