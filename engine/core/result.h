#pragma once
// Errors are values at the engine's API: Result<T> = std::expected<T, Error>.
// Messages name the offending value and the limit it broke. Host-only
// (C++23): CUDA translation units must not include this header.

#include <expected>
#include <string>
#include <utility>

#include <fmt/format.h>

namespace pagoda {

struct Error {
    std::string message;
};

template <class T>
using Result = std::expected<T, Error>;

// fail("tensor {}: offset {} past end of file (size {})", name, off, size)
template <class... Args>
std::unexpected<Error> fail(fmt::format_string<Args...> format, Args&&... args) {
    return std::unexpected(Error{fmt::format(format, std::forward<Args>(args)...)});
}

// Prefixes an error with context ("model.gguf: " + message).
inline Error withContext(std::string_view context, Error error) {
    return Error{fmt::format("{}: {}", context, error.message)};
}

}  // namespace pagoda

// PAGODA_ASSIGN_OR_RETURN(int n, readCount(...)); returns the error, if any,
// from the enclosing function (which must return a Result).
#define PAGODA_CONCAT_INNER(a, b) a##b
#define PAGODA_CONCAT(a, b) PAGODA_CONCAT_INNER(a, b)
#define PAGODA_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr)            \
    auto tmp = (expr);                                          \
    if (!tmp) return std::unexpected(std::move(tmp).error());   \
    lhs = std::move(*tmp)
#define PAGODA_ASSIGN_OR_RETURN(lhs, expr) \
    PAGODA_ASSIGN_OR_RETURN_IMPL(PAGODA_CONCAT(pagodaResult_, __LINE__), lhs, expr)
#define PAGODA_RETURN_IF_ERROR(expr)                                       \
    do {                                                                   \
        auto pagodaStatus_ = (expr);                                       \
        if (!pagodaStatus_) return std::unexpected(std::move(pagodaStatus_).error()); \
    } while (0)
