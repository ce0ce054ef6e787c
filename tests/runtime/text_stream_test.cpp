// Streaming text with stop strings: text is released as soon as it cannot
// be the start of a stop string, a stop string spanning tokens is never
// shown, and what is held comes out at the end.

#include <gtest/gtest.h>

#include "engine/runtime/text_stream.h"
#include "runtime_test_util.h"

namespace pagoda::runtime::testing {
namespace {

class TextStreamTest : public ::testing::Test {
protected:
    void SetUp() override { m_model = tinyModel(64); }

    // Streams "hello world" (no BOS before it: a leading space) and returns
    // every delta, then what finish() released, after "|".
    std::string stream(std::vector<std::string> stops, bool* stopped = nullptr) {
        const Tokenizer& tokenizer = *m_model.model->tokenizer();
        TextStream text(&tokenizer, std::move(stops), false);
        std::string out;
        for (int32_t id : tokenizer.encode("hello world", false)) {
            const TextStream::Delta delta = text.push(id);
            out += delta.text;
            if (delta.stopped) {
                if (stopped) *stopped = true;
                break;
            }
        }
        return out + "|" + text.finish();
    }

    TestModel m_model;
};

TEST_F(TextStreamTest, WithoutStopStringsEverythingIsReleased) { EXPECT_EQ(stream({}), " hello world|"); }

TEST_F(TextStreamTest, StopStringSpanningTokensIsCutBefore) {
    bool stopped = false;
    EXPECT_EQ(stream({"zz", "lo w"}, &stopped), " hel|");
    EXPECT_TRUE(stopped);
}

TEST_F(TextStreamTest, PartialStopStringIsHeldUntilTheEnd) {
    bool stopped = false;
    EXPECT_EQ(stream({"worlds"}, &stopped), " hello |world");
    EXPECT_FALSE(stopped);
}

TEST_F(TextStreamTest, EarliestStopStringWins) { EXPECT_EQ(stream({"world", "ell"}), " h|"); }

TEST_F(TextStreamTest, AfterBosTheLeadingSpaceIsDropped) {
    const Tokenizer& tokenizer = *m_model.model->tokenizer();
    TextStream text(&tokenizer, {}, true);
    std::string out;
    for (int32_t id : tokenizer.encode("hello", false)) out += text.push(id).text;
    EXPECT_EQ(out + text.finish(), "hello");
}

TEST(TextStreamNoTokenizer, GivesNoText) {
    TextStream text(nullptr, {"a"}, false);
    EXPECT_EQ(text.push(5).text, "");
    EXPECT_FALSE(text.push(6).stopped);
    EXPECT_EQ(text.finish(), "");
}

}  // namespace
}  // namespace pagoda::runtime::testing
