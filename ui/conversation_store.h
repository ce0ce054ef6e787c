#pragma once
// Conversations on disk: one JSON file per conversation in
// <dir>/conversations/, the open tabs and their order in <dir>/session.json,
// closed conversations in <dir>/closed/ (the newest kClosedKept, so a closed
// tab can be reopened). Every write goes to a temporary file that is renamed
// into place (QSaveFile): a crash leaves the old file or the new one.

#include <QString>
#include <QStringList>
#include <QVector>

#include <optional>

#include "ui/conversation.h"

namespace pagoda::ui {

class ConversationStore {
public:
    static constexpr int kClosedKept = 20;

    explicit ConversationStore(QString dir);

    const QString& dir() const { return m_dir; }

    struct Session {
        QVector<Conversation> open;  // in tab order
        int current = 0;
        QStringList errors;  // files that could not be read, and why
    };
    Session load() const;
    // Error message, empty on success.
    QString save(const Conversation& conversation) const;
    QString saveSession(const QStringList& openIds, int current) const;
    // Moves the conversation to closed/.
    QString close(const QString& id) const;
    // The most recently closed conversation, moved back to conversations/.
    std::optional<Conversation> reopenLastClosed() const;

private:
    QString conversationPath(const QString& folder, const QString& id) const;

    QString m_dir;
};

// Writes `bytes` atomically; error message, empty on success.
QString writeFileAtomically(const QString& path, const QByteArray& bytes);

}  // namespace pagoda::ui
