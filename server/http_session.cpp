#include "server/http_session.h"

#include "server/shared_text_body.h"

namespace statherd::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

HttpSession::HttpSession(tcp::socket socket, SessionContext ctx)
    : stream_(std::move(socket)), ctx_(ctx) {
  ++ctx_.sessions;
}

// Runs on the io thread whenever the session is evictable: then its only owner is its pending
// read, whose handler (or the io_context's destruction) runs there.
HttpSession::~HttpSession() {
  set_evictable(Evictable::No);
  --ctx_.sessions;
}

void HttpSession::set_evictable(Evictable e) {
  if (e == evictable_) return;
  if (evictable_ == Evictable::Idle) ctx_.idle.mark_busy(this);
  if (evictable_ == Evictable::Slow) ctx_.slow.mark_busy(this);
  evictable_ = e;
  if (e == Evictable::Idle) ctx_.idle.mark_idle(this);
  if (e == Evictable::Slow) {
    slow_since_ = std::chrono::steady_clock::now();
    ctx_.slow.mark_idle(this);  // the slow list's order: oldest first
  }
}

void HttpSession::evict() {
  evictable_ = Evictable::No;  // the server took it out of its list
  close();  // the pending read ends with operation_aborted and releases the session
}

// Waits for the first byte of the next request while idle (evictable), then reads its header
// with the same deadline: idle_timeout from the end of the previous answer.
void HttpSession::do_read() {
  parser_.emplace();
  parser_->header_limit(ctx_.options.max_header_bytes);
  parser_->body_limit(ctx_.options.max_body_bytes);
  stream_.expires_after(ctx_.options.idle_timeout);  // a connection waiting for a request
  if (buffer_.size() > 0) return read_header();      // a pipelined request has begun
  set_evictable(Evictable::Idle);
  stream_.async_read_some(buffer_.prepare(4096),
                          beast::bind_front_handler(&HttpSession::on_first_bytes,
                                                    shared_from_this()));
}

void HttpSession::on_first_bytes(beast::error_code ec, size_t n) {
  set_evictable(Evictable::No);
  if (ec) return fail_read(ec);
  buffer_.commit(n);
  read_header();
}

// A header still coming in is "slow": evictable when no idle session is left (slowloris).
void HttpSession::read_header() {
  set_evictable(Evictable::Slow);
  http::async_read_header(stream_, buffer_, *parser_,
                          beast::bind_front_handler(&HttpSession::on_header, shared_from_this()));
}

void HttpSession::on_header(beast::error_code ec, size_t) {
  set_evictable(Evictable::No);
  if (ec) return fail_read(ec);
  const auto& req = parser_->get();
  // Route, method and token are checked before a body is read, so an unauthenticated client
  // cannot make the server read 64 MiB.
  ApiResponse head = ctx_.routes.check_head(
      std::string_view(req.method_string().data(), req.method_string().size()),
      std::string_view(req.target().data(), req.target().size()),
      std::string_view(req[http::field::authorization].data(),
                       req[http::field::authorization].size()));
  if (head.status != 0) return do_write(std::move(head), parser_->is_done());
  // Only ingest (authenticated above) may send max_body_bytes; every other route gets the
  // small read limit, refused from Content-Length before any of the body is read.
  body_limit_ = route_body_limit();
  if (auto length = parser_->content_length(); length && *length > body_limit_) {
    return fail_read(http::error::body_limit);
  }
  parser_->body_limit(body_limit_);
  // An unauthenticated (read route) body stays evictable; an ingest body (token checked) not.
  if (!ingest_route()) set_evictable(Evictable::Slow);
  stream_.expires_after(ctx_.options.read_timeout);
  http::async_read(stream_, buffer_, *parser_,
                   beast::bind_front_handler(&HttpSession::on_read, shared_from_this()));
}

void HttpSession::on_read(beast::error_code ec, size_t) {
  set_evictable(Evictable::No);
  if (ec) return fail_read(ec);
  const auto& req = parser_->get();
  ApiRequest request;
  request.method = std::string_view(req.method_string().data(), req.method_string().size());
  request.target = std::string_view(req.target().data(), req.target().size());
  auto auth = req[http::field::authorization];
  request.authorization = std::string_view(auth.data(), auth.size());
  request.body = req.body();
  if (auto work = ctx_.routes.prepare_read(request)) return run_on_read_thread(std::move(work));
  if (ctx_.ingest && *ctx_.ingest && ingest_route()) return ingest_async(request.body);
  do_write(ctx_.routes.handle(request), true);
}

// The answer comes once the batch is in the WAL (group commit, on the committer's thread) and
// is written back on this session's executor, which also takes the last reference to it.
void HttpSession::ingest_async(std::string_view body) {
  (*ctx_.ingest)(body, [self = shared_from_this()](IngestOutcome outcome) mutable {
    auto executor = self->stream_.get_executor();
    asio::post(executor, [self = std::move(self), outcome = std::move(outcome)]() mutable {
      self->do_write(ApiRoutes::ingest_response(outcome), true);
    });
  });
}

// The answer is written back on this session's executor (the io thread).
void HttpSession::run_on_read_thread(std::function<ApiResponse()> work) {
  if (ctx_.queued_reads.load() >= ctx_.options.max_queued_reads) {
    ApiResponse busy = json_error(503, "too many read requests waiting",
                                  "retry in a moment; reads are served one at a time");
    busy.headers.emplace_back("Retry-After", "1");
    return do_write(std::move(busy), true);
  }
  ++ctx_.queued_reads;
  asio::post(ctx_.reads, [self = shared_from_this(), work = std::move(work)] {
    ApiResponse answer;
    try {
      answer = work();
    } catch (const std::exception& e) {
      answer = json_error(500, std::string("read request failed: ") + e.what());
    }
    --self->ctx_.queued_reads;
    asio::post(self->stream_.get_executor(), [self, answer = std::move(answer)]() mutable {
      self->do_write(std::move(answer), true);
    });
  });
}

// Only ingest (authenticated) may send max_body_bytes; every other route max_read_body_bytes.
bool HttpSession::ingest_route() const {
  const auto& req = parser_->get();
  return ApiRoutes::needs_token(
      ApiRoutes::path_of(std::string_view(req.target().data(), req.target().size())));
}

uint64_t HttpSession::route_body_limit() const {
  return ingest_route() ? ctx_.options.max_body_bytes : ctx_.options.max_read_body_bytes;
}

void HttpSession::fail_read(beast::error_code ec) {
  if (ec == http::error::body_limit) {
    // Beast checks Content-Length against the parser's limit while it reads the header,
    // before on_header has chosen the route's limit: name the route's limit, not body_limit_.
    const bool ingest = ingest_route();
    return do_write(json_error(413, "request body over " + std::to_string(route_body_limit()) +
                                        " bytes",
                               ingest ? "raise limits.max_body_bytes or send smaller batches"
                                      : "send fewer targets, or raise "
                                        "limits.max_read_body_bytes"),
                    false);
  }
  if (ec == http::error::header_limit) {
    return do_write(json_error(431, "request header too large"), false);
  }
  if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
      ec == asio::error::operation_aborted) {
    return close();
  }
  if (ec.category() == http::make_error_code(http::error::bad_target).category()) {
    return do_write(json_error(400, "bad HTTP request: " + ec.message()), false);
  }
  close();
}

void HttpSession::do_write(ApiResponse api, bool may_keep_alive) {
  const auto& req = parser_->get();
  auto res = std::make_shared<http::response<SharedTextBody>>(
      static_cast<http::status>(api.status), req.version());
  res->set(http::field::server, "statherd");
  res->set(http::field::content_type, api.content_type);
  if (!api.allow.empty()) res->set(http::field::allow, api.allow);
  for (const auto& [name, value] : api.headers) res->set(name, value);
  if (api.status == 401) res->set(http::field::www_authenticate, "Bearer");
  res->keep_alive(may_keep_alive && req.keep_alive());
  res->body().shared = std::move(api.shared_body);
  res->body().own = std::move(api.body);
  res->prepare_payload();
  stream_.expires_after(ctx_.options.write_timeout);
  http::async_write(stream_, *res, [self = shared_from_this(), res](beast::error_code ec, size_t) {
    if (ec) return self->close();
    if (!res->keep_alive()) return self->linger_close();
    self->do_read();
  });
}

void HttpSession::close() {
  beast::error_code ignored;
  stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
  stream_.close();
}

// After answering a request whose body was not read (401, 413, ...): send FIN, then read and
// discard what the client is still sending (bounded in bytes and time), so closing with unread
// data does not reset the connection before the client has read the answer.
void HttpSession::linger_close() {
  beast::error_code ignored;
  stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
  discard_until_eof();
}

void HttpSession::discard_until_eof() {
  stream_.expires_after(std::chrono::seconds(2));
  stream_.async_read_some(asio::buffer(discard_),
                          [self = shared_from_this()](beast::error_code ec, size_t n) {
                            self->discarded_ += n;
                            if (ec || self->discarded_ > kMaxDiscardBytes) {
                              return self->stream_.close();
                            }
                            self->discard_until_eof();
                          });
}

}  // namespace statherd::server
