//! Dynamic gRPC branch calls: the stored protobuf bytes to `/pkg.Svc/Method`, no generated
//! stubs, the context as `dtm-*` metadata.

use std::str::FromStr;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::metadata::{MetadataKey, MetadataValue};
use tonic::transport::{Channel, Endpoint};

use crate::DtmResult;
use crate::caller::{CallError, CallRequest, Caller, Reply, truncate};

impl Caller {
    pub(crate) async fn call_grpc(
        &self,
        channel: Channel,
        server: &str,
        method: &str,
        req: &CallRequest<'_>,
    ) -> Result<Reply, CallError> {
        let url = || format!("{server}{method}");
        let transport = |message: String| CallError::Transport {
            url: url(),
            message,
        };
        let mut grpc = tonic::client::Grpc::new(channel);
        // A registry channel waits while no instance is registered: bound that wait too.
        match tokio::time::timeout(req.timeout, grpc.ready()).await {
            Ok(ready) => ready.map_err(|e| transport(kit::errors::chain(&e)))?,
            Err(_) => return Err(transport("no instance ready before the timeout".into())),
        }
        let mut request = tonic::Request::new(Bytes::copy_from_slice(req.body));
        request.set_timeout(req.timeout);
        let md = request.metadata_mut();
        req.info.to_metadata(md).map_err(|e| transport(e.message))?;
        if let Some(name) = req.op_name {
            let name = MetadataValue::try_from(name).map_err(|e| transport(e.to_string()))?;
            md.insert("dtm-op", name);
        }
        for (k, v) in req.headers {
            // Header names were checked when the transaction was submitted; skip what gRPC refuses.
            if let (Ok(k), Ok(v)) = (
                MetadataKey::from_bytes(k.to_ascii_lowercase().as_bytes()),
                MetadataValue::try_from(v.as_str()),
            ) {
                md.insert(k, v);
            }
        }
        kit::trace::inject_metadata(md);
        let path =
            http::uri::PathAndQuery::from_str(method).map_err(|e| transport(e.to_string()))?;
        match grpc.unary(request, path, RawCodec).await {
            Ok(_) => Ok(Reply::new(DtmResult::Success, String::new())),
            Err(status) => match DtmResult::from_grpc(status.code(), status.message()) {
                Some(result) => Ok(Reply::new(result, status.message().to_owned())),
                None => Err(CallError::Answer {
                    url: url(),
                    status: format!("{:?}", status.code()),
                    body: truncate(status.message().to_owned()),
                }),
            },
        }
    }

    /// One lazily connected channel per `host:port`, shared by every call to it.
    pub(crate) fn channel(&self, authority: &str, timeout: Duration) -> Result<Channel, CallError> {
        let mut channels = self
            .channels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(c) = channels.get(authority) {
            return Ok(c.clone());
        }
        let endpoint = Endpoint::from_shared(format!("http://{authority}")).map_err(|e| {
            CallError::Transport {
                url: authority.to_owned(),
                message: e.to_string(),
            }
        })?;
        let channel = endpoint
            .connect_timeout(timeout)
            .tcp_nodelay(true)
            .connect_lazy();
        channels.insert(authority.to_owned(), channel.clone());
        Ok(channel)
    }
}

/// Protobuf bytes in, bytes out: the coordinator forwards what the client encoded.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }
    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = tonic::Status;
    fn encode(&mut self, item: Bytes, buf: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        buf.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = tonic::Status;
    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, tonic::Status> {
        Ok(Some(buf.copy_to_bytes(buf.remaining())))
    }
}
