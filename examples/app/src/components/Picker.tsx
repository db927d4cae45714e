// Picker owns one selector of a page (workflow, function, execution): the
// known choices plus whatever the address bar asked for.
import type { ReactNode } from 'react';

export interface PickerProps {
  label: string;
  value: string;
  options: readonly (string | { value: string; label: string })[];
  onChange: (value: string) => void;
  testId: string;
  children?: ReactNode;
}

export function Picker({ label, value, options, onChange, testId }: PickerProps) {
  const items = options.map((o) => (typeof o === 'string' ? { value: o, label: o } : o));
  if (!items.some((item) => item.value === value)) items.unshift({ value, label: value });
  return (
    <label className="picker">
      <span>{label}</span>
      <select value={value} onChange={(event) => onChange(event.target.value)} data-testid={testId}>
        {items.map((item) => (
          <option key={item.value} value={item.value}>
            {item.label}
          </option>
        ))}
      </select>
    </label>
  );
}
