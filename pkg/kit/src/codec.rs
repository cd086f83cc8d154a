//! The protobuf codec of every generated gRPC server and client (set in `api/build.rs`).
//!
//! It is tonic-prost's, except that a request that does not decode is the client's fault:
//! `InvalidArgument` with reason `CODEC`, like a malformed JSON body over HTTP — not the
//! `Internal` that tonic answers by default.

use tonic::Status;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic_prost::{ProstDecoder, ProstEncoder};

use crate::Error;

/// `application/grpc+proto` via prost, with decode errors as `InvalidArgument`.
#[derive(Debug, Clone, Default)]
pub struct ProstCodec<T, U>(tonic_prost::ProstCodec<T, U>);

impl<T, U> Codec for ProstCodec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = InvalidArgumentDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        self.0.encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        InvalidArgumentDecoder(self.0.decoder())
    }
}

/// tonic-prost's decoder with its errors turned into `InvalidArgument`.
#[derive(Debug, Default)]
pub struct InvalidArgumentDecoder<U>(ProstDecoder<U>);

impl<U: prost::Message + Default> Decoder for InvalidArgumentDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        self.0.decode(buf).map_err(|s| {
            Error::bad_request(
                "CODEC",
                format!("invalid protobuf message: {}", s.message()),
            )
            .into()
        })
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.0.buffer_settings()
    }
}
