#pragma once
// Errors of the CUDA layer as values. nvcc has no C++23, so this is a small
// Status / StatusOr<T> of ours rather than engine/core/result.h; the engine
// turns a failed Status into its Result at the module boundary. Header-only:
// the engine uses it without linking any CUDA code.

#include <optional>
#include <string>
#include <utility>

namespace pagoda::cuda {

class [[nodiscard]] Status {
public:
    Status() = default;
    static Status error(std::string message) {
        Status s;
        s.m_failed = true;
        s.m_message = std::move(message);
        return s;
    }

    bool ok() const { return !m_failed; }
    const std::string& message() const { return m_message; }

private:
    bool m_failed = false;
    std::string m_message;
};

template <class T>
class [[nodiscard]] StatusOr {
public:
    StatusOr(T value) : m_value(std::move(value)) {}
    // `status` must be an error.
    StatusOr(Status status) : m_status(std::move(status)) {}

    bool ok() const { return m_value.has_value(); }
    const Status& status() const { return m_status; }
    T& value() { return *m_value; }
    const T& value() const { return *m_value; }
    T* operator->() { return &*m_value; }
    T& operator*() { return *m_value; }

private:
    std::optional<T> m_value;
    Status m_status;
};

}  // namespace pagoda::cuda

#define PAGODA_CUDA_CONCAT_INNER(a, b) a##b
#define PAGODA_CUDA_CONCAT(a, b) PAGODA_CUDA_CONCAT_INNER(a, b)

// Returns a failed Status from the enclosing function (which returns Status
// or StatusOr<T>).
#define PAGODA_CUDA_RETURN_IF_ERROR(expr)                     \
    do {                                                      \
        ::pagoda::cuda::Status pagodaCudaStatus_ = (expr);    \
        if (!pagodaCudaStatus_.ok()) return pagodaCudaStatus_; \
    } while (0)

#define PAGODA_CUDA_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
    auto tmp = (expr);                                    \
    if (!tmp.ok()) return tmp.status();                   \
    lhs = std::move(tmp.value())
#define PAGODA_CUDA_ASSIGN_OR_RETURN(lhs, expr) \
    PAGODA_CUDA_ASSIGN_OR_RETURN_IMPL(PAGODA_CUDA_CONCAT(pagodaCudaResult_, __LINE__), lhs, expr)
