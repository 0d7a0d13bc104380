/// Why a credit statement was refused: a stable code, the JSON path of the offending field and the rule it broke.
///
/// `description` reads `path: rule`, e.g. `facilityOpened.amount.minor: must be positive`.
public struct CreditError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Stable code: `invalid_payload`, `unknown_field`, `missing_field`, `wrong_type`, `invalid_value`,
    /// `kind_not_supported`, `kind_not_submittable`, `role_not_permitted`, `unknown_reference`,
    /// `invalid_reference`, `not_original_reporter`.
    public let code: String
    /// Dotted JSON path rooted at the kind's name (`correction.payload.balance.minor`, `collateralRegistered.securesFacilityIds[2]`).
    public let path: String
    /// The rule that was broken, in words.
    public let rule: String

    public init(code: String, path: String, rule: String) {
        self.code = code
        self.path = path
        self.rule = rule
    }

    public var description: String { "\(path): \(rule)" }

    static func invalid(_ path: String, _ rule: String) -> CreditError {
        CreditError(code: "invalid_value", path: path, rule: rule)
    }
}
