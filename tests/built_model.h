#pragma once
// A synthetic model built in memory for tests: the GGUF bytes and the Model
// that views them.

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "engine/gguf/gguf_reader.h"
#include "engine/gguf/gguf_writer.h"
#include "engine/model/model.h"
#include "engine/model/synthetic.h"

namespace pagoda::test {

struct BuiltModel {
    std::vector<uint8_t> bytes;  // owns the GGUF the model views
    std::unique_ptr<Model> model;
};

// The model of `spec`; model is null, with a test failure, when any step fails.
inline BuiltModel buildModel(const SyntheticSpec& spec) {
    BuiltModel b;
    auto writer = syntheticModelWriter(spec);
    EXPECT_TRUE(writer) << writer.error().message;
    if (!writer) return b;
    auto bytes = writer->writeToMemory();
    EXPECT_TRUE(bytes) << bytes.error().message;
    if (!bytes) return b;
    b.bytes = std::move(*bytes);
    auto file = gguf::GgufFile::parse(b.bytes);
    EXPECT_TRUE(file) << file.error().message;
    if (!file) return b;
    auto model = Model::fromFile(std::move(*file));
    EXPECT_TRUE(model) << model.error().message;
    if (model) b.model = std::move(*model);
    return b;
}

}  // namespace pagoda::test
