// A Beast body for the answers of statherd-server: an optional immutable text shared between
// answers (GET /metrics: the text of every series, rendered once per interval), followed by
// the answer's own text. The response keeps the shared_ptr alive until it is written, so N
// slow readers of /metrics hold one copy of it instead of N. Only written, never read.
#pragma once

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/optional.hpp>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

namespace statherd::server {

struct SharedTextBody {
  struct value_type {
    std::shared_ptr<const std::string> shared;  // sent first; may be null
    std::string own;
  };

  static std::uint64_t size(const value_type& body) {
    return (body.shared ? body.shared->size() : 0) + body.own.size();
  }

  class writer {
   public:
    using const_buffers_type = std::array<boost::asio::const_buffer, 2>;

    template <bool isRequest, class Fields>
    writer(const boost::beast::http::header<isRequest, Fields>&, const value_type& body)
        : body_(body) {}

    void init(boost::beast::error_code& ec) { ec = {}; }

    // Both parts at once; Beast consumes them as the socket takes them.
    boost::optional<std::pair<const_buffers_type, bool>> get(boost::beast::error_code& ec) {
      ec = {};
      if (done_) return boost::none;
      done_ = true;
      const_buffers_type buffers{
          body_.shared ? boost::asio::buffer(*body_.shared) : boost::asio::const_buffer(),
          boost::asio::buffer(body_.own)};
      return {{buffers, false}};
    }

   private:
    const value_type& body_;
    bool done_ = false;
  };
};

}  // namespace statherd::server
